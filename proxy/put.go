package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/proxy/checksum"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/s3seal/s3seal/sigv4"
	"github.com/valyala/fasthttp"
)

// putObject encrypts the client's body on its way to the store.
func (s *Server) putObject(r *request) error {
	plainLen, err := plainLength(r)
	if err != nil {
		return err
	}
	if plainLen > s.cfg.MaxObjectSize {
		return s3wire.ErrEntityTooLarge
	}
	user, err := s3wire.UserMetadata(r.header)
	if err != nil {
		return err
	}
	// A Content-MD5 is verified over the body before it can complete, so
	// it is the plaintext's once the upload succeeds.
	meta := &envelope.Meta{Size: plainLen, User: user, MD5: r.auth.ContentMD5, Headers: s3wire.SealedContentHeaders(r.header)}
	if alg := r.auth.ChecksumAlgorithm; alg != "" {
		meta.Checksum = map[string]string{alg: r.auth.ChecksumValue}
	}
	body, err := clientBody(r, plainLen)
	if err != nil {
		return err
	}
	// src is the plaintext to store: the client's body, verified as it is
	// read (trailers and checksums are body's), with the adaptive check's
	// first block put back in front.
	var src io.Reader = body
	var flags envelope.Flags
	if alg := s.compressFor(r, plainLen); alg != "" {
		rec := &errRecorder{r: body}
		var compressed bool
		if src, compressed, err = s.adaptive(alg, rec, plainLen); err != nil {
			if bodyErr := rec.Err(); bodyErr != nil {
				r.ctx.SetConnectionClose()
				return bodyError(bodyErr)
			}
			return s3wire.Internal(err)
		}
		if compressed {
			flags = envelope.FlagCompressed
			meta.Compression = &envelope.Compression{Algorithm: alg, BlockSize: s.comp.cfg.BlockSize}
		}
	}
	obj, err := s.sealNewFlags(r, envelope.LayoutSingle, meta, flags)
	if err != nil {
		return err
	}
	defer obj.Close()

	out := r.outbound(http.MethodPut)
	s3wire.DropContentHeaders(out.Header)
	out.Header.Set(s3wire.SealHeader, obj.HeaderValue())
	s.resolveIfMatch(r, out)
	var resp *fasthttp.Response
	if flags&envelope.FlagCompressed != 0 {
		resp, err = s.sendCompressed(r, out, obj, src, plainLen)
	} else {
		encrypt := func(src io.Reader) io.Reader { return obj.EncryptReader(src, plainLen) }
		resp, err = s.sendEncrypted(r, out, src, encrypt, envelope.CiphertextSize(plainLen))
	}
	if err != nil {
		return err
	}
	if resp.StatusCode() != http.StatusOK {
		s.sendUpstream(r, resp, false)
		return nil
	}
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, true)
	storeTag := string(resp.Header.Peek("ETag"))
	if name, value := trailerChecksum(body); name != "" && meta.Checksum == nil && !s.cfg.DropTrailerChecksums {
		if tag, version, ok := s.keepTrailerChecksum(r, obj, meta, name, value, storeTag, string(resp.Header.Peek("X-Amz-Version-Id"))); ok {
			storeTag = tag
			if version != "" {
				r.ctx.Response.Header.Set("X-Amz-Version-Id", version)
			}
		}
	}
	if meta.Compression != nil {
		s.rememberSize(storeTag, out.BodyLen, plainLen)
	}
	r.ctx.Response.Header.Set("ETag", s3wire.ClientETag(storeTag))
	echoChecksums(r, body)
	r.echoSSE()
	resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
	return nil
}

// sendEncrypted sends out with body src encrypted by encrypt into exactly n
// bytes. A failure of the client's body (a bad checksum, a short body, a
// vanished client) cuts the upstream request short, so the store keeps
// nothing, and is reported as the client's error; the errors are recorded
// at the source, so a failing store is not blamed on the client. The
// encrypting reader goes to the client unwrapped: fasthttp uses its
// WriteTo, which seals segments in place and writes them straight out.
func (s *Server) sendEncrypted(r *request, out *upstream.Request, src io.Reader, encrypt func(io.Reader) io.Reader, n int64) (*fasthttp.Response, error) {
	rec := &errRecorder{r: src}
	out.Body, out.BodyLen = encrypt(rec), n
	resp, err := s.up.Do(out)
	if bodyErr := rec.Err(); bodyErr != nil {
		if resp != nil {
			fasthttp.ReleaseResponse(resp)
		}
		r.ctx.SetConnectionClose()
		return nil, bodyError(bodyErr)
	}
	if err != nil {
		return nil, s3wire.Internal(fmt.Errorf("upstream %s: %w", r.op, err))
	}
	return resp, nil
}

// sendCompressed sends out with src compressed and encrypted by obj (a
// compressed object). The store needs the length up front, and it is
// known only once the whole body is compressed: the sealed body is spooled
// first (compress.go), and a failure of the client's body is its error
// before anything reaches the store.
func (s *Server) sendCompressed(r *request, out *upstream.Request, obj *envelope.Object, src io.Reader, plainLen int64) (*fasthttp.Response, error) {
	rec := &errRecorder{r: src}
	_, hi := obj.Compression().CompressedSizeBounds(plainLen)
	body, n, release, err := s.spoolSealed(r, obj.EncryptCompressedReader(rec), rec, hi)
	if err != nil {
		return nil, err
	}
	defer release()
	out.Body, out.BodyLen = body, n
	resp, err := s.up.Do(out)
	if err != nil {
		return nil, s3wire.Internal(fmt.Errorf("upstream %s: %w", r.op, err))
	}
	return resp, nil
}

// trailerChecksum is the x-amz-checksum-* trailer of a verified body that
// has been read to its end, if it had one.
func trailerChecksum(body io.Reader) (name, value string) {
	tr, ok := body.(sigv4.TrailerReader)
	if !ok {
		return "", ""
	}
	for k, vs := range tr.Trailer() {
		if _, ok := checksum.FromHeader(k); ok && len(vs) > 0 {
			return strings.ToLower(k), vs[0]
		}
	}
	return "", ""
}

// keepTrailerChecksum seals a checksum that came in the body's trailer into
// the object just stored (store ETag storeTag, version id version): its
// header went to the store before the trailer arrived, so the header is
// replaced with a metadata-only copy of the object onto itself, done only
// if the object is still the one stored (a write that landed in between
// is never overwritten). It costs one CopyObject request, in which the
// store copies the object's data within itself (S3 does for a copy onto
// itself; so does MinIO: BenchmarkPutChecksum, README). The store
// headers a copy would not keep (ACL, storage class, object lock, ...) are
// asked for again; tags are kept by the copy. It returns the copy's store
// ETag and version id; ok is false when the checksum could not be kept
// (logged: the object is whole and readable without it).
func (s *Server) keepTrailerChecksum(r *request, obj *envelope.Object, meta *envelope.Meta, name, value, storeTag, version string) (tag, newVersion string, ok bool) {
	fail := func(err error) (string, string, bool) {
		s.log.Warn("trailer checksum verified but not kept", "id", r.id, "bucket", r.t.Bucket, "key", r.t.Key, "err", err)
		return "", "", false
	}
	kept := *meta
	kept.Checksum = map[string]string{name: value}
	dk, err := s.newDataKey(r, r.t.Bucket)
	if err != nil {
		return fail(err)
	}
	if err := dk.resealable(obj.Version()); err != nil {
		kms.Zero(dk.Plaintext)
		return fail(err)
	}
	hv, err := obj.Reseal(dk.Plaintext, dk.keyInfo(), r.t.Bucket, r.t.Key, kept.Encode())
	kms.Zero(dk.Plaintext)
	if err != nil {
		return fail(err) // no room beside the client's metadata
	}
	source := r.t.RawPath
	if version != "" {
		source += "?versionId=" + url.QueryEscape(version)
	}
	out := upstream.NewRequest(http.MethodPut, r.t.RawPath, "")
	for k, v := range s3wire.CreateHeaders(r.header) {
		out.Header.Set(k, v)
	}
	for _, h := range []string{"X-Amz-Expected-Bucket-Owner", "X-Amz-Request-Payer"} {
		if v := r.header.Get(h); v != "" {
			out.Header.Set(h, v)
		}
	}
	out.Header.Set(s3wire.SealHeader, hv)
	out.Header.Set("X-Amz-Copy-Source", source)
	out.Header.Set("X-Amz-Copy-Source-If-Match", storeTag)
	out.Header.Set("X-Amz-Metadata-Directive", "REPLACE")
	var res s3wire.CopyObjectResult
	resp, err := s.up.DoXMLResp(out, &res)
	if err != nil {
		return fail(err)
	}
	newVersion = string(resp.Header.Peek("X-Amz-Version-Id"))
	fasthttp.ReleaseResponse(resp)
	if version != "" && newVersion != "" && newVersion != version {
		// A versioned bucket would keep the version without the checksum
		// as an extra version of one PUT.
		s.deleteVersion(r.t.RawPath, version)
	}
	meta.Checksum = kept.Checksum
	return res.ETag, newVersion, true
}
