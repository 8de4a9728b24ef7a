package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/valyala/fasthttp"
)

// keyFor returns the KMS key that protects new objects in bucket.
func (s *Server) keyFor(bucket string) string {
	if k, ok := s.cfg.BucketKeys[bucket]; ok && k != "" {
		return k
	}
	return s.cfg.DefaultKeyID
}

// newDataKey fetches a (usually cached) data key for bucket, under the key
// the request asks for if it may (kmskeys.go).
func (s *Server) newDataKey(r *request, bucket string) (*kms.DataKey, error) {
	keyID, alg, err := s.writeKey(r, bucket)
	if err != nil {
		return nil, err
	}
	dk, err := s.kms.GenerateDataKey(kmsContext(r, bucket, r.t.Key), keyID, kms.BucketContext(bucket))
	if err != nil {
		return nil, fromKMSError(err)
	}
	noteSSE(r, dk.KeyID, alg)
	return dk, nil
}

// sealNew makes the envelope of a new object at the request's path, its
// object key sealed under a (usually cached) data key of the bucket.
func (s *Server) sealNew(r *request, layout envelope.Layout, meta *envelope.Meta) (*envelope.Object, error) {
	dk, err := s.newDataKey(r, r.t.Bucket)
	if err != nil {
		return nil, err
	}
	defer kms.Zero(dk.Plaintext)
	obj, err := envelope.NewObject(dk.Plaintext, envelope.KeyInfo{KeyID: dk.KeyID, Wrapped: dk.Ciphertext},
		r.t.Bucket, r.t.Key, layout, meta.Encode())
	if err != nil {
		return nil, sealError(err)
	}
	return obj, nil
}

// sealError reports a failure to build an envelope header: too much
// metadata is the client's doing, anything else ours.
func sealError(err error) error {
	if errors.Is(err, envelope.ErrTooLarge) {
		e := *errMetadataTooLarge
		e.Cause = err
		return &e
	}
	return errInternal(err)
}

// openSealed unwraps the data key named in an object's envelope header and
// opens the header for (bucket, key).
func (s *Server) openSealed(r *request, headerValue, bucket, key string) (*envelope.Object, *envelope.Meta, error) {
	if headerValue == "" {
		return nil, nil, errNotSealed
	}
	h, err := envelope.ParseHeader(headerValue)
	if err != nil {
		return nil, nil, errDecrypt(fmt.Errorf("envelope header: %w", err))
	}
	ki := h.KeyInfo()
	dek, err := s.kms.Decrypt(kmsContext(r, bucket, key), ki.KeyID, ki.Wrapped, kms.BucketContext(bucket))
	if err != nil {
		return nil, nil, fromKMSError(err)
	}
	defer kms.Zero(dek)
	noteSSE(r, ki.KeyID, sseKMS)
	obj, err := envelope.Open(h, dek, bucket, key)
	if err != nil {
		return nil, nil, errDecrypt(fmt.Errorf("open envelope for %s/%s: %w", bucket, key, err))
	}
	m, err := envelope.DecodeMeta(obj.Meta())
	if err != nil {
		obj.Close()
		return nil, nil, errDecrypt(err)
	}
	return obj, m, nil
}

// putObject encrypts the client's body on its way to the store.
func (s *Server) putObject(r *request) error {
	plainLen, err := plainLength(r)
	if err != nil {
		return err
	}
	if plainLen > s.cfg.MaxObjectSize {
		return errEntityTooLarge
	}
	user, err := userMetadata(r.header)
	if err != nil {
		return err
	}
	body, err := clientBody(r, plainLen)
	if err != nil {
		return err
	}
	// A Content-MD5 is verified over the body before it can complete, so
	// it is the plaintext's once the upload succeeds.
	meta := &envelope.Meta{Size: plainLen, User: user, MD5: r.auth.ContentMD5, Headers: sealedContentHeaders(r.header)}
	if alg := r.auth.ChecksumAlgorithm; alg != "" {
		meta.Checksum = map[string]string{alg: r.auth.ChecksumValue}
	}
	obj, err := s.sealNew(r, envelope.LayoutSingle, meta)
	if err != nil {
		return err
	}
	defer obj.Close()

	out := newOut(http.MethodPut, r.t.RawPath, forwardQuery(r.t.RawQuery))
	copyRequestHeaders(out.Header, r.header)
	dropContentHeaders(out.Header)
	out.Header.Set(sealHeader, obj.HeaderValue())
	encrypt := func(src io.Reader) io.Reader { return obj.EncryptReader(src, plainLen) }
	resp, err := s.sendEncrypted(r, out, body, encrypt, envelope.CiphertextSize(plainLen))
	if err != nil {
		return err
	}
	if resp.StatusCode() != http.StatusOK {
		s.sendUpstream(r, resp, false)
		return nil
	}
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, true)
	r.ctx.Response.Header.Set("ETag", clientETag(string(resp.Header.Peek("ETag"))))
	echoChecksums(r, body)
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
func (s *Server) sendEncrypted(r *request, out *outRequest, src io.Reader, encrypt func(io.Reader) io.Reader, n int64) (*fasthttp.Response, error) {
	rec := &errRecorder{r: src}
	out.Body, out.BodyLen = encrypt(rec), n
	resp, err := s.up.do(out)
	if bodyErr := rec.Err(); bodyErr != nil {
		if resp != nil {
			fasthttp.ReleaseResponse(resp)
		}
		r.ctx.SetConnectionClose()
		return nil, bodyError(bodyErr)
	}
	if err != nil {
		return nil, errInternal(fmt.Errorf("upstream %s: %w", r.op, err))
	}
	return resp, nil
}

// byteRange is a parsed Range header. S3 honours a single range only;
// anything it cannot parse it ignores and serves the whole object.
type byteRange struct {
	start, end int64 // end < 0: to the end of the object
	suffix     int64 // > 0 or suffixSet: the last suffix bytes
	suffixSet  bool
	raw        string
}

func parseRange(v string) (*byteRange, bool) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return nil, false
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return nil, false
	}
	r := &byteRange{raw: v, end: -1}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return nil, false
		}
		r.suffix, r.suffixSet = n, true
		return r, true
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return nil, false
	}
	r.start = start
	if b != "" {
		end, err := strconv.ParseInt(b, 10, 64)
		if err != nil || end < start {
			return nil, false
		}
		r.end = end
	}
	return r, true
}

// resolve turns the range into [off, off+n) for an object of size, or
// reports it unsatisfiable.
func (br *byteRange) resolve(size int64) (off, n int64, ok bool) {
	if br.suffixSet {
		if br.suffix == 0 || size == 0 {
			return 0, 0, false
		}
		n = min(br.suffix, size)
		return size - n, n, true
	}
	if br.start >= size {
		return 0, 0, false
	}
	end := size - 1
	if br.end >= 0 && br.end < end {
		end = br.end
	}
	return br.start, end - br.start + 1, true
}

// storedExtent reads the stored object size and the offset of the returned
// bytes from an upstream GET/HEAD response.
func storedExtent(resp *fasthttp.Response, status int) (size, off int64, err error) {
	if status == http.StatusPartialContent {
		cr := string(resp.Header.Peek("Content-Range"))
		var first, last, total int64
		if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &first, &last, &total); err != nil {
			return 0, 0, fmt.Errorf("store sent Content-Range %q", cr)
		}
		return total, first, nil
	}
	n := resp.Header.ContentLength()
	if n < 0 {
		return 0, 0, errors.New("store sent no Content-Length")
	}
	return int64(n), 0, nil
}

// statusCode names the S3 error code for a bodiless upstream status (HEAD
// responses carry no XML).
func statusCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "NoSuchKey"
	case http.StatusForbidden:
		return "AccessDenied"
	case http.StatusPreconditionFailed:
		return "PreconditionFailed"
	case http.StatusNotModified:
		return "NotModified"
	}
	return "InternalError"
}
