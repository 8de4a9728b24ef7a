package proxy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/valyala/fasthttp"
)

// Multipart uploads. Every part is self-describing (FORMAT.md): a part
// header with its own part key sealed under a data key, then its segments,
// then padding so that each stored part is exactly plaintext +
// envelope.PartOverhead bytes. So any instance can encrypt any part with
// no shared state, and a multipart object's plaintext size is its stored
// size minus N·PartOverhead, N being the part count in its ETag.

func (s *Server) multipart(r *request) error {
	switch r.op {
	case opCreateMultipart:
		return s.createMultipart(r)
	case opUploadPart:
		return s.uploadPart(r)
	case opUploadPartCopy:
		return s.uploadPartCopy(r)
	case opCompleteMultipart:
		return s.completeMultipart(r)
	case opListParts:
		return s.listParts(r)
	}
	return errNotImplemented(r.op.String())
}

// createMultipart seals the object's metadata (its own object key, bound
// to bucket and key) into the upload, as PutObject does, with a fresh upload
// identity that every part will be sealed to. This header is "pending": it
// has no manifest, and no reader accepts the object until
// CompleteMultipartUpload has replaced it (finalize.go).
func (s *Server) createMultipart(r *request) error {
	user, err := userMetadata(r.header)
	if err != nil {
		return err
	}
	upload, err := envelope.NewUploadID()
	if err != nil {
		return errInternal(err)
	}
	meta := &envelope.Meta{Size: -1, User: user, Headers: sealedContentHeaders(r.header), Upload: upload,
		Create: createHeaders(r.header)}
	obj, err := s.sealNew(r, envelope.LayoutMultipart, meta)
	if err != nil {
		return err
	}
	defer obj.Close()
	// The header that finalizes the upload carries a manifest instead of
	// the Create headers: it must fit too, or the upload could complete at
	// the store and never become readable.
	final := *meta
	final.Create, final.Manifest = nil, &envelope.Manifest{Parts: envelope.MaxPartNumber,
		Size: envelope.MaxPartNumber * envelope.MaxPartSize, Digest: make([]byte, sha256.Size)}
	if envelope.HeaderValueLen(obj.KeyInfo(), len(final.Encode())) > envelope.MaxHeaderValueLen {
		return sealError(envelope.ErrTooLarge)
	}
	out := newOut(http.MethodPost, r.t.RawPath, forwardQuery(r.t.RawQuery))
	copyRequestHeaders(out.Header, r.header)
	dropContentHeaders(out.Header)
	out.Header.Set(sealHeader, obj.HeaderValue())
	resp, err := s.up.do(out)
	if err != nil {
		return errInternal(err)
	}
	if resp.StatusCode() != http.StatusOK {
		s.sendUpstream(r, resp, false)
		return nil
	}
	// The parts must be sealed to the upload identity, and under the key
	// the client chose: both travel in the upload id.
	defer fasthttp.ReleaseResponse(resp)
	body := resp.Body()
	if bs := resp.BodyStream(); bs != nil {
		if body, err = readAllLimit(bs, maxSmallBody); err != nil {
			return errInternal(err)
		}
	}
	raw, i, j, ok := element(body, "UploadId")
	if !ok {
		return errInternal(fmt.Errorf("CreateMultipartUpload answer without UploadId"))
	}
	keyID, _, _ := s.writeKey(r, r.t.Bucket) // checked by sealNew already
	if sameKey(keyID, s.keyFor(r.t.Bucket)) {
		keyID = ""
	}
	id := escapeXMLText(clientUploadID(unescapeXMLText(string(raw)), upload, keyID))
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, false)
	r.ctx.SetBody(slices.Concat(body[:i], []byte(id), body[j:]))
	return nil
}

// maxPlainPart is the largest plaintext of one part: S3 stores parts of at
// most 5 GiB, and a part's ciphertext is envelope.PartOverhead larger.
const maxPlainPart = maxStored - envelope.PartOverhead

// createApplied are CreateMultipartUpload headers the store applies to the
// object it creates and a copy would not keep: the copy that finalizes the
// upload asks for them again (tags survive a copy by themselves).
var createApplied = []string{
	"X-Amz-Acl", "X-Amz-Grant-Read", "X-Amz-Grant-Read-Acp", "X-Amz-Grant-Write-Acp",
	"X-Amz-Grant-Full-Control", "X-Amz-Storage-Class", "X-Amz-Website-Redirect-Location",
	"X-Amz-Object-Lock-Mode", "X-Amz-Object-Lock-Retain-Until-Date", "X-Amz-Object-Lock-Legal-Hold",
}

func createHeaders(h http.Header) map[string]string {
	var m map[string]string
	for _, k := range createApplied {
		if v := strings.Join(h.Values(k), ","); v != "" {
			if m == nil {
				m = make(map[string]string)
			}
			m[k] = v
		}
	}
	return m
}

// uploadPart encrypts one part under a fresh part key.
func (s *Server) uploadPart(r *request) error {
	pn, err := strconv.Atoi(r.t.Query.Get("partNumber"))
	if err != nil || pn < 1 || pn > 10000 {
		return errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
	}
	if r.upload.upload == nil {
		return errForeignUpload()
	}
	plainLen, err := plainLength(r)
	if err != nil {
		return err
	}
	if plainLen > maxPlainPart {
		return errEntityTooLarge
	}
	body, err := clientBody(r, plainLen)
	if err != nil {
		return err
	}
	return s.putPart(r, pn, body, plainLen)
}

// putPart encrypts plainLen bytes from src as part pn of the request's
// upload and stores it.
func (s *Server) putPart(r *request, pn int, src io.Reader, plainLen int64) error {
	dk, err := s.newDataKey(r, r.t.Bucket)
	if err != nil {
		return err
	}
	part, err := envelope.NewPart(dk.Plaintext, envelope.KeyInfo{KeyID: dk.KeyID, Wrapped: dk.Ciphertext},
		r.t.Bucket, r.t.Key, r.upload.upload, pn, plainLen)
	kms.Zero(dk.Plaintext)
	if err != nil {
		return errInternal(err)
	}
	defer part.Close()
	out := newOut(http.MethodPut, r.t.RawPath, "partNumber="+strconv.Itoa(pn)+"&uploadId="+url.QueryEscape(r.t.Query.Get("uploadId")))
	for _, h := range []string{"X-Amz-Expected-Bucket-Owner", "X-Amz-Request-Payer"} {
		if v := r.header.Get(h); v != "" {
			out.Header.Set(h, v)
		}
	}
	resp, err := s.sendEncrypted(r, out, src, part.EncryptReader, envelope.PartCiphertextSize(plainLen))
	if err != nil {
		return err
	}
	// A part's ETag is the MD5 of its ciphertext, which clients such as
	// s3cmd would compare with the part's MD5: it gets "-0" like an
	// object's, and CompleteMultipartUpload maps it back.
	ok := resp.StatusCode() == http.StatusOK
	s.sendUpstream(r, resp, false)
	if ok {
		echoChecksums(r, src)
	}
	return nil
}

// uploadPartCopy decrypts the source range through the proxy and encrypts
// it as the new part: the ciphertext of another object cannot be reused,
// since every part is sealed to its own object.
func (s *Server) uploadPartCopy(r *request) error {
	pn, err := strconv.Atoi(r.t.Query.Get("partNumber"))
	if err != nil || pn < 1 || pn > 10000 {
		return errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
	}
	if r.upload.upload == nil {
		return errForeignUpload()
	}
	src, err := parseCopySource(r.header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	rq := &readReq{bucket: src.Bucket, key: src.Key, rawPath: src.RawPath, cond: http.Header{}}
	if src.VersionID != "" {
		rq.query = "versionId=" + url.QueryEscape(src.VersionID)
	}
	if v := r.header.Get("X-Amz-Copy-Source-Range"); v != "" {
		br, ok := parseRange(v)
		if !ok || br.suffixSet || br.end < 0 {
			return errInvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
		}
		rq.br = br
	}
	po, err := s.openPlain(r, rq)
	if err != nil {
		if ur, ok := err.(*upstreamReply); ok {
			st := ur.resp.StatusCode()
			fasthttp.ReleaseResponse(ur.resp)
			if st == http.StatusNotFound {
				return s3err(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			}
			return &Error{Status: st, Code: statusCode(st), Message: http.StatusText(st)}
		}
		return err
	}
	defer po.Close()
	if err := checkCopyConditions(r.header, po.storeTag, string(po.resp.Header.Peek("Last-Modified"))); err != nil {
		return err
	}
	if po.n > maxPlainPart {
		return errEntityTooLarge
	}
	// putPart answers with the store's UploadPart response; S3 answers
	// UploadPartCopy with a CopyPartResult document.
	if err := s.putPart(r, pn, po.body, po.n); err != nil {
		return err
	}
	if r.ctx.Response.StatusCode() != http.StatusOK {
		return nil
	}
	etag := string(r.ctx.Response.Header.Peek("ETag"))
	r.ctx.Response.ResetBody()
	writeXML(r.ctx, http.StatusOK, copyPartResult{XMLNS: s3NS, ETag: etag,
		LastModified: s.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z")})
	return nil
}

type copyPartResult struct {
	XMLName      struct{} `xml:"CopyPartResult"`
	XMLNS        string   `xml:"xmlns,attr,omitempty"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

// listParts rewrites each part's stored size to its plaintext size.
func (s *Server) listParts(r *request) error {
	out := newOut(http.MethodGet, r.t.RawPath, forwardQuery(r.t.RawQuery))
	copyRequestHeaders(out.Header, r.header)
	resp, body, err := s.fetchDocument(r, out)
	if resp == nil {
		return err
	}
	defer fasthttp.ReleaseResponse(resp)
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, false)
	if r.upload.client != r.upload.storeID {
		if _, i, j, ok := element(body, "UploadId"); ok {
			body = slices.Concat(body[:i], []byte(escapeXMLText(r.upload.client)), body[j:])
		}
	}
	r.ctx.SetBody(rewriteElements(body, []string{"Part"}, func(e []byte) []byte {
		if tag, i, j, ok := element(e, "ETag"); ok {
			e = slices.Concat(e[:i], []byte(escapeQuotes(clientETag(unescapeQuotes(string(tag))))), e[j:])
		}
		raw, i, j, ok := element(e, "Size")
		if !ok {
			return e
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n < envelope.PartOverhead {
			return e
		}
		return append(append(append([]byte{}, e[:i]...), strconv.FormatInt(n-envelope.PartOverhead, 10)...), e[j:]...)
	}))
	return nil
}

// partMaps remembers verified part maps, by object version and header.
type partMaps struct {
	lru *lru.Cache[string, *envelope.PartMap]
}

func newPartMaps(size int) *partMaps {
	c, _ := lru.New[string, *envelope.PartMap](size) // size > 0
	return &partMaps{lru: c}
}

// partMapKey names one object version with one header: a header put back
// from another version of the object misses the cache and is checked anew.
func partMapKey(rq *readReq, storeTag, headerValue string) string {
	h := sha256.Sum256([]byte(headerValue))
	return rq.bucket + "\x00" + rq.key + "\x00" + storeTag + "\x00" + string(h[:])
}

// partMap returns the object's part map, verified against its sealed
// manifest: from the cache, or read from the part headers (one small
// request per part, in parallel when the parts are equal-sized) before any
// plaintext is read.
func (s *Server) partMap(rq *readReq, storeTag, headerValue string, stored int64, version int, meta *envelope.Meta) (*envelope.PartMap, error) {
	key := partMapKey(rq, storeTag, headerValue)
	if pm, ok := s.partMaps.lru.Get(key); ok {
		return pm, nil
	}
	pm, err := envelope.ReadPartMap(envelope.PartsInETag(storeTag), stored, func(off int64) (*envelope.PartHeader, error) {
		return s.readPartHeader(rq, storeTag, off)
	})
	if err == nil {
		err = pm.Verify(version, meta)
	}
	if err != nil {
		return nil, errDecrypt(fmt.Errorf("%s/%s: %w", rq.bucket, rq.key, err))
	}
	s.partMaps.lru.Add(key, pm)
	return pm, nil
}

// readPartHeader fetches the part header at stored offset off of the
// object version storeTag.
func (s *Server) readPartHeader(rq *readReq, storeTag string, off int64) (*envelope.PartHeader, error) {
	out := newOut(http.MethodGet, rq.rawPath, rq.query)
	out.Header.Set("If-Match", storeTag)
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+envelope.PartHeaderSize-1))
	resp, err := s.up.do(out)
	if err != nil {
		return nil, errInternal(err)
	}
	defer fasthttp.ReleaseResponse(resp)
	if st := resp.StatusCode(); st != http.StatusPartialContent {
		resp.CloseBodyStream()
		return nil, errInternal(fmt.Errorf("reading part header at %d: store answered %d", off, st))
	}
	buf := make([]byte, envelope.PartHeaderSize)
	src := resp.BodyStream()
	if src == nil {
		src = bytes.NewReader(resp.Body())
	}
	_, err = io.ReadFull(src, buf)
	resp.CloseBodyStream()
	if err != nil {
		return nil, errInternal(fmt.Errorf("reading part header at %d: %w", off, err))
	}
	ph, err := envelope.ParsePartHeader(buf)
	if err != nil {
		return nil, errDecrypt(err)
	}
	return ph, nil
}

// partOpener opens the parts of an object for envelope.MultipartReader:
// it unwraps each part's data key (the KMS cache makes that one call per
// data key, not per part) and opens the part for the path and upload the
// parts are bound to.
func (s *Server) partOpener(r *request, bucket, key string, meta *envelope.Meta) envelope.PartOpener {
	pb, pk := meta.PartsPath(bucket, key)
	ctx := kmsContext(r, pb, pk)
	return func(ph *envelope.PartHeader) (*envelope.Part, error) {
		ki := ph.KeyInfo()
		dek, err := s.kms.Decrypt(ctx, ki.KeyID, ki.Wrapped, kms.BucketContext(pb))
		if err != nil {
			return nil, fromKMSError(err)
		}
		defer kms.Zero(dek)
		part, err := envelope.OpenPart(ph, dek, pb, pk, meta.Upload)
		if err != nil {
			return nil, errDecrypt(fmt.Errorf("open part %d of %s/%s: %w", ph.PartNumber(), pb, pk, err))
		}
		return part, nil
	}
}
