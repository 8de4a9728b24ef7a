package proxy

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
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
// size minus N·PartOverhead, N being the part count in its ETag. In a
// bucket with compression on, parts may be compressed instead (FORMAT.md
// 12.2.3): the upload id names the algorithm, and the object's size is
// then in its sealed manifest only.

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
	// In a bucket with compression on, the header says that the parts may
	// be compressed (FORMAT.md 12.2.3) and the upload id which algorithm
	// UploadPart uses: each part is then checked on its own.
	var flags envelope.Flags
	comp := s.compressFor(r, 1)
	if comp != "" {
		flags = envelope.FlagCompressed
	}
	obj, err := s.sealNewFlags(r, envelope.LayoutMultipart, meta, flags)
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
	if comp != "" {
		clientID = s3wire.ClientUploadIDCompressed(storeID, upload, keyID, comp)
	}
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
	body := src // the client's body, for its checksums
	var comp *envelope.Compression
	if alg := r.upload.Compress; alg != "" && s.comp != nil && compressPart(plainLen) {
		rec := &errRecorder{r: src}
		var compressed bool
		var err error
		if src, compressed, err = s.adaptive(alg, rec, plainLen); err != nil {
			if bodyErr := rec.Err(); bodyErr != nil {
				r.ctx.SetConnectionClose()
				return bodyError(bodyErr)
			}
			return s3wire.Internal(err)
		}
		if compressed {
			comp = &envelope.Compression{Algorithm: alg, BlockSize: s.comp.cfg.BlockSize}
		}
	}
	dk, err := s.newDataKey(r, r.t.Bucket)
	if err != nil {
		return err
	}
	var part *envelope.Part
	if comp != nil {
		cfg := dk.config()
		cfg.Level = s.comp.cfg.level(r.t.Bucket)
		part, err = cfg.NewCompressedPart(dk.Plaintext, dk.keyInfo(), r.t.Bucket, r.t.Key, r.upload.Upload, pn, plainLen, *comp)
	} else {
		part, err = dk.config().NewPart(dk.Plaintext, dk.keyInfo(), r.t.Bucket, r.t.Key, r.upload.Upload, pn, plainLen)
	}
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
	var resp *fasthttp.Response
	if comp != nil {
		resp, err = s.sendCompressedPart(r, out, part, src, plainLen)
	} else {
		resp, err = s.sendEncrypted(r, out, src, part.EncryptReader, envelope.PartCiphertextSize(plainLen))
	}
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
		if comp != nil {
			// ListParts cannot learn a compressed part's plaintext size
			// from the store (compress.go): this instance keeps it.
			if ph, err := part.CompressedHeader(); err == nil {
				s.rememberPartSize(r.upload.StoreID, pn, storeTag, ph.CiphertextSize(), plainLen)
			}
		}
		if sum := plainMD5(); sum != nil && storeTag != "" {
			r.ctx.Response.Header.Set("ETag", s3wire.ClientPartETag(storeTag, sum))
		}
		echoChecksums(r, body)
		r.echoSSE()
	}
	return nil
}

// compressPart reports whether a part of plainLen bytes of a compressed
// upload is worth compressing. S3 refuses a part under 5 MiB that is not
// the last, so a compressed part that would be stored in 5 MiB or more
// uncompressed is padded to 5 MiB (FORMAT.md 12.2.3): one of 5 MiB − 20
// KiB to 5 MiB of plaintext could save at most 20 KiB, and is stored
// uncompressed. An empty part has nothing to save.
func compressPart(plainLen int64) bool {
	return plainLen > 0 && (plainLen+envelope.PartOverhead < envelope.MinStoredPartSize || plainLen > envelope.MinStoredPartSize)
}

// sendCompressedPart sends out with src compressed and sealed as the
// compressed part p: its body spooled first (the store needs the length,
// known at its end), then header, body and padding. A failure of the
// client's body is its error before anything reaches the store.
func (s *Server) sendCompressedPart(r *request, out *upstream.Request, p *envelope.Part, src io.Reader, plainLen int64) (*fasthttp.Response, error) {
	rec := &errRecorder{r: src}
	_, hi := p.Compression().CompressedSizeBounds(plainLen)
	body, n, release, err := s.spoolSealed(r, p.EncryptCompressedReader(rec), rec, hi)
	if err != nil {
		return nil, err
	}
	defer release()
	ph, err := p.CompressedHeader()
	if err != nil || ph.BodyLen() != n {
		return nil, s3wire.Internal(fmt.Errorf("compressed part: %d bytes spooled: %v", n, err))
	}
	out.Body = io.MultiReader(bytes.NewReader(ph.Bytes()), body, io.LimitReader(zeros{}, ph.PadSize()))
	out.BodyLen = ph.CiphertextSize()
	resp, err := s.up.Do(out)
	if err != nil {
		return nil, s3wire.Internal(fmt.Errorf("upstream %s: %w", r.op, err))
	}
	return resp, nil
}

// zeros reads as an endless run of zero bytes (a compressed part's padding).
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
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
