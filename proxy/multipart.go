package proxy

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// Multipart uploads. Every part is self-describing (FORMAT.md): a part
// header with its own part key sealed under a data key, then its segments,
// then padding so that each stored part is exactly plaintext +
// envelope.PartOverhead bytes. So any instance can encrypt any part with
// no shared state, and a multipart object's plaintext size is its stored
// size minus N·PartOverhead, N being the part count in its ETag.

// createMultipart seals the object's metadata (its own object key, bound
// to bucket and key) into the upload, as PutObject does, with a fresh upload
// identity that every part will be sealed to. This header is "pending": it
// has no manifest, and no reader accepts the object until
// CompleteMultipartUpload has replaced it (finalize.go).
func (s *Server) createMultipart(r *request) error {
	user, err := s3wire.UserMetadata(r.header)
	if err != nil {
		return err
	}
	upload, err := envelope.NewUploadID()
	if err != nil {
		return s3wire.Internal(err)
	}
	alg, typ, err := createChecksum(r.header)
	if err != nil {
		return err
	}
	meta := &envelope.Meta{Size: -1, User: user, Headers: s3wire.SealedContentHeaders(r.header), Upload: upload,
		Create: s3wire.CreateHeaders(r.header), ChecksumAlgorithm: string(alg), ChecksumType: string(typ)}
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
	if alg != "" {
		// And so must the object's checksum, at its longest ("-10000").
		final.ChecksumAlgorithm = ""
		final.Checksum = map[string]string{alg.Header(): strings.Repeat("A", base64.StdEncoding.EncodedLen(alg.Size())) +
			"-" + strconv.Itoa(envelope.MaxPartNumber)}
	}
	if envelope.HeaderValueLen(obj.KeyInfo(), len(final.Encode())) > envelope.MaxHeaderValueLen {
		return sealError(envelope.ErrTooLarge)
	}
	out := r.outbound(http.MethodPost)
	s3wire.DropContentHeaders(out.Header)
	out.Header.Set(s3wire.SealHeader, obj.HeaderValue())
	resp, body, err := s.fetchDocument(r, out, s3wire.MaxSmallBody)
	if resp == nil {
		return err
	}
	defer fasthttp.ReleaseResponse(resp)
	// The parts must be sealed to the upload identity, and under the key
	// the client chose: both travel in the upload id.
	storeID, ok := s3wire.UploadIDText(body)
	if !ok {
		return s3wire.Internal(errors.New("CreateMultipartUpload answer without UploadId"))
	}
	keyID, _, _ := s.writeKey(r, r.t.Bucket) // checked by sealNew already
	if sameKey(keyID, s.keyFor(r.t.Bucket)) {
		keyID = ""
	}
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, false)
	clientID := s3wire.ClientUploadID(storeID, upload, keyID)
	if s.writeOnly(obj.KeyInfo()) {
		// This instance (or another write-only one) completes the upload
		// without the DEK: the pending header's object key travels in the
		// upload id (FORMAT.md section 12.3).
		pk, err := obj.PendingKey()
		if err != nil {
			return s3wire.Internal(err)
		}
		clientID = s3wire.ClientUploadIDPending(storeID, upload, keyID, pk)
		clear(pk)
	}
	r.ctx.SetBody(s3wire.SetUploadID(body, clientID))
	// The store's own checksum defaults are of the ciphertext.
	r.ctx.Response.Header.Del("X-Amz-Checksum-Algorithm")
	r.ctx.Response.Header.Del("X-Amz-Checksum-Type")
	if alg != "" {
		r.ctx.Response.Header.Set("X-Amz-Checksum-Algorithm", string(alg))
		r.ctx.Response.Header.Set("X-Amz-Checksum-Type", string(typ))
	}
	r.echoSSE()
	return nil
}

// uploadPart encrypts one part under a fresh part key.
func (s *Server) uploadPart(r *request) error {
	pn, err := s3wire.ParsePartNumber(r.t.Query.Get("partNumber"))
	if err != nil {
		return err
	}
	if r.upload.Upload == nil {
		return s3wire.ErrForeignUpload
	}
	plainLen, err := plainLength(r)
	if err != nil {
		return err
	}
	if plainLen > s3wire.MaxPlainPart {
		return s3wire.ErrEntityTooLarge
	}
	body, err := clientBody(r, plainLen)
	if err != nil {
		return err
	}
	// A Content-MD5 is verified over the plaintext before the store can
	// accept the part (clientBody), so once it has, the MD5 is the part's.
	sum, err := base64.StdEncoding.DecodeString(r.auth.ContentMD5)
	if err != nil || len(sum) != md5.Size {
		sum = nil
	}
	return s.putPart(r, pn, body, plainLen, func() []byte { return sum })
}

// putPart encrypts plainLen bytes from src as part pn of the request's
// upload and stores it. plainMD5 gives the plaintext's MD5 once the store
// has accepted the part, or nil if it is not known.
func (s *Server) putPart(r *request, pn int, src io.Reader, plainLen int64, plainMD5 func() []byte) error {
	dk, err := s.newDataKey(r, r.t.Bucket)
	if err != nil {
		return err
	}
	part, err := dk.config().NewPart(dk.Plaintext, dk.keyInfo(), r.t.Bucket, r.t.Key, r.upload.Upload, pn, plainLen)
	kms.Zero(dk.Plaintext)
	if err != nil {
		return s3wire.Internal(err)
	}
	defer part.Close()
	out := upstream.NewRequest(http.MethodPut, r.t.RawPath, "partNumber="+strconv.Itoa(pn)+"&uploadId="+url.QueryEscape(r.upload.StoreID))
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
	// object's, and CompleteMultipartUpload maps it back. When the
	// plaintext's MD5 is known, the part ETag carries it too, for the
	// object's ETag at Complete (s3wire.ClientPartETag).
	ok := resp.StatusCode() == http.StatusOK
	storeTag := string(resp.Header.Peek("ETag"))
	s.sendUpstream(r, resp, false)
	if ok {
		if sum := plainMD5(); sum != nil && storeTag != "" {
			r.ctx.Response.Header.Set("ETag", s3wire.ClientPartETag(storeTag, sum))
		}
		echoChecksums(r, src)
		r.echoSSE()
	}
	return nil
}

// uploadPartCopy decrypts the source range through the proxy and encrypts
// it as the new part: the ciphertext of another object cannot be reused,
// since every part is sealed to its own object.
func (s *Server) uploadPartCopy(r *request) error {
	pn, err := s3wire.ParsePartNumber(r.t.Query.Get("partNumber"))
	if err != nil {
		return err
	}
	if r.upload.Upload == nil {
		return s3wire.ErrForeignUpload
	}
	src, err := s3wire.ParseCopySource(r.header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	rq := &readReq{bucket: src.Bucket, key: src.Key, rawPath: src.RawPath, query: src.Query(), cond: http.Header{}}
	if v := r.header.Get("X-Amz-Copy-Source-Range"); v != "" {
		br, ok := s3wire.ParseRange(v)
		if !ok || br.SuffixSet || br.End < 0 {
			return s3wire.InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
		}
		rq.br = br
	}
	po, err := s.openCopySource(r, rq)
	if err != nil {
		return err
	}
	defer po.Close()
	if err := s3wire.CheckCopyConditions(r.header, po.storeTag, po.meta.ETag, string(po.resp.Header.Peek("Last-Modified"))); err != nil {
		return err
	}
	if po.n > s3wire.MaxPlainPart {
		return s3wire.ErrEntityTooLarge
	}
	// putPart answers with the store's UploadPart response; S3 answers
	// UploadPartCopy with a CopyPartResult document. The plaintext passes
	// through the proxy anyway: its MD5 goes into the part ETag, so that a
	// copy made of parts gets S3's multipart ETag at Complete too.
	h := md5.New()
	body := io.TeeReader(po.body, h)
	if err := s.putPart(r, pn, body, po.n, func() []byte { return h.Sum(nil) }); err != nil {
		return err
	}
	if r.ctx.Response.StatusCode() != http.StatusOK {
		return nil
	}
	etag := string(r.ctx.Response.Header.Peek("ETag"))
	r.ctx.Response.ResetBody()
	writeXML(r.ctx, http.StatusOK, s3wire.CopyPartResult{XMLNS: s3wire.NS, ETag: etag,
		LastModified: s.cfg.Now().UTC().Format(s3wire.TimeFormat)})
	return nil
}
