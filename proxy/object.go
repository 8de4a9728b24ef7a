package proxy

import (
	"bytes"
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

// newDataKey fetches a (usually cached) data key for bucket.
func (s *Server) newDataKey(r *request, bucket string) (*kms.DataKey, error) {
	dk, err := s.kms.GenerateDataKey(r.std, s.keyFor(bucket), kms.BucketContext(bucket))
	if err != nil {
		return nil, fromKMSError(err)
	}
	return dk, nil
}

// openSealed unwraps the data key named in an object's envelope header and
// opens the header for (bucket, key).
func (s *Server) openSealed(r *request, headerValue, bucket, key string) (*envelope.Object, *sealedMeta, error) {
	if headerValue == "" {
		return nil, nil, errNotSealed
	}
	h, err := envelope.ParseHeader(headerValue)
	if err != nil {
		return nil, nil, errDecrypt(fmt.Errorf("envelope header: %w", err))
	}
	ki := h.KeyInfo()
	dek, err := s.kms.Decrypt(r.std, ki.KeyID, ki.Wrapped, kms.BucketContext(bucket))
	if err != nil {
		return nil, nil, fromKMSError(err)
	}
	defer kms.Zero(dek)
	obj, err := envelope.Open(h, dek, bucket, key)
	if err != nil {
		return nil, nil, errDecrypt(fmt.Errorf("open envelope for %s/%s: %w", bucket, key, err))
	}
	m, err := decodeMeta(obj.Meta())
	if err != nil {
		obj.Close()
		return nil, nil, errDecrypt(fmt.Errorf("sealed metadata: %w", err))
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
	src := r.ctx.RequestBodyStream()
	if src == nil {
		src = bytes.NewReader(r.ctx.Request.Body())
	}
	body, err := r.auth.Body(src, plainLen)
	if err != nil {
		return fromAuthError(err)
	}
	chk, err := newCheckReader(body, plainLen, r.header)
	if err != nil {
		return err
	}
	dk, err := s.newDataKey(r, r.t.Bucket)
	if err != nil {
		return err
	}
	meta := sealedMeta{Size: plainLen, User: user, MD5: chk.declaredMD5()}
	obj, err := envelope.NewObject(dk.Plaintext, envelope.KeyInfo{KeyID: dk.KeyID, Wrapped: dk.Ciphertext},
		r.t.Bucket, r.t.Key, envelope.LayoutSingle, meta.encode())
	kms.Zero(dk.Plaintext)
	if err != nil {
		return errInternal(err)
	}
	defer obj.Close()

	out := newOut(http.MethodPut, r.t.RawPath, forwardQuery(r.t.RawQuery))
	copyRequestHeaders(out.Header, r.header)
	out.Header.Set(sealHeader, obj.HeaderValue())
	rec := &errRecorder{r: obj.EncryptReader(chk, plainLen)}
	out.Body, out.BodyLen = rec, envelope.CiphertextSize(plainLen)
	resp, err := s.up.do(out)
	if bodyErr := rec.Err(); bodyErr != nil {
		if resp != nil {
			fasthttp.ReleaseResponse(resp)
		}
		// The upstream request was cut short, so the store stored nothing.
		r.ctx.SetConnectionClose()
		return bodyError(bodyErr)
	}
	if err != nil {
		return errInternal(fmt.Errorf("upstream PUT: %w", err))
	}
	if resp.StatusCode() != http.StatusOK {
		s.sendUpstream(r, resp, false)
		return nil
	}
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, true)
	r.ctx.Response.Header.Set("ETag", clientETag(string(resp.Header.Peek("ETag"))))
	resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
	return nil
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

// conditionHeaders are the GET/HEAD conditions forwarded to the store
// (ETags mapped) so that it evaluates them against the stored version.
var conditionHeaders = []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}

// getObject serves GetObject and HeadObject: it asks the store for the
// segment-aligned ciphertext covering the requested plaintext and decrypts
// it on the way out.
func (s *Server) getObject(r *request, head bool) error {
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	if pn := r.t.Query.Get("partNumber"); pn != "" && pn != "1" {
		return errNotImplemented("partNumber other than 1 (multipart objects arrive with issue 6)")
	}
	query := forwardQuery(r.t.RawQuery)
	out := newOut(method, r.t.RawPath, query)
	for _, h := range conditionHeaders {
		if v := r.header.Get(h); v != "" {
			if strings.HasPrefix(h, "If-") && strings.HasSuffix(h, "Match") {
				v = storeETagList(v)
			}
			out.Header.Set(h, v)
		}
	}
	copyResponseOverrides(out.Header, r.header)

	br, hasRange := parseRange(r.header.Get("Range"))
	if hasRange && br.suffixSet {
		// A suffix range needs the plaintext size to find its first
		// segment: ask for it first, and pin the version we will read.
		size, etag, err := s.statSize(r, query)
		if err != nil {
			return err
		}
		off, n, ok := br.resolve(size)
		if !ok {
			return errInvalidRange(size, br.raw)
		}
		br = &byteRange{start: off, end: off + n - 1, raw: br.raw}
		if out.Header.Get("If-Match") == "" {
			out.Header.Set("If-Match", etag)
		}
	}
	if hasRange && !head {
		// Ask for whole segments; the store clamps the end to the object.
		end := br.end
		if end < 0 {
			end = 1<<62 - 1
		}
		alignedEnd := (end/envelope.SegmentSize + 1) * envelope.SegmentSize
		coff, clen := envelope.CipherRange(alignedEnd, br.start, end-br.start+1)
		out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", coff, coff+clen-1))
	}
	resp, err := s.up.do(out)
	if err != nil {
		return errInternal(fmt.Errorf("upstream %s: %w", method, err))
	}
	status := resp.StatusCode()
	if status == http.StatusRequestedRangeNotSatisfiable {
		fasthttp.ReleaseResponse(resp)
		size, _, err := s.statSize(r, query)
		if err != nil {
			return err
		}
		return errInvalidRange(size, br.raw)
	}
	if status != http.StatusOK && status != http.StatusPartialContent {
		// Errors and 304 Not Modified go back as the store sent them.
		s.sendUpstream(r, resp, status == http.StatusNotModified)
		if status == http.StatusNotModified {
			r.ctx.Response.Header.Set("ETag", clientETag(string(resp.Header.Peek("ETag"))))
		}
		return nil
	}
	owned := true
	defer func() {
		if owned {
			resp.CloseBodyStream()
			fasthttp.ReleaseResponse(resp)
		}
	}()
	storeTag := string(resp.Header.Peek("ETag"))
	stored, cipherOff, err := storedExtent(resp, status)
	if err != nil {
		return errInternal(err)
	}
	obj, meta, err := s.openSealed(r, string(resp.Header.Peek(sealHeader)), r.t.Bucket, r.t.Key)
	if err != nil {
		return err
	}
	defer obj.Close()
	if obj.Layout() != envelope.LayoutSingle {
		return errNotImplemented("multipart objects (issue 6)")
	}
	size, ok := plainSize(stored, storeTag)
	if !ok || size != meta.Size {
		return errDecrypt(fmt.Errorf("stored size %d does not match sealed size %d", stored, meta.Size))
	}

	off, n := int64(0), size
	if hasRange {
		var ok bool
		if off, n, ok = br.resolve(size); !ok {
			return errInvalidRange(size, br.raw)
		}
	}
	ctx := r.ctx
	relayHeaders(&ctx.Response.Header, &resp.Header, true)
	ctx.Response.Header.Set("ETag", clientETag(storeTag))
	ctx.Response.Header.Set("Accept-Ranges", "bytes")
	setUserMetadata(ctx.Response.Header.Set, meta.User)
	if hasRange {
		ctx.SetStatusCode(http.StatusPartialContent)
		ctx.Response.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size))
	} else {
		ctx.SetStatusCode(http.StatusOK)
	}
	if head {
		ctx.Response.Header.SetContentLength(int(n))
		ctx.Response.SkipBody = true
		return nil
	}
	src := resp.BodyStream()
	if src == nil {
		src = bytes.NewReader(resp.Body())
	}
	wantOff, _ := envelope.CipherRange(size, off, n)
	if wantOff != cipherOff {
		return errInternal(fmt.Errorf("store returned range at %d, want %d", cipherOff, wantOff))
	}
	dec := obj.DecryptReader(src, size, off, n)
	// Decrypt the first piece before committing to a status, so that a
	// damaged object usually fails with a clean error rather than a cut
	// connection.
	first := make([]byte, min(n, 64<<10))
	if _, err := io.ReadFull(dec, first); err != nil {
		return errDecrypt(fmt.Errorf("%s/%s: %w", r.t.Bucket, r.t.Key, err))
	}
	owned = false
	ctx.SetBodyStream(&plainBody{
		r:    io.MultiReader(bytes.NewReader(first), dec),
		up:   &upstreamBody{resp: resp},
		log:  s.log,
		what: r.t.Bucket + "/" + r.t.Key,
		id:   r.id,
	}, int(n))
	return nil
}

// copyResponseOverrides keeps nothing from headers: response-* overrides
// travel in the query, which is forwarded as is.
func copyResponseOverrides(_ http.Header, _ http.Header) {}

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

// statSize HEADs the object for its plaintext size and store ETag.
func (s *Server) statSize(r *request, query string) (int64, string, error) {
	out := newOut(http.MethodHead, r.t.RawPath, query)
	for _, h := range conditionHeaders {
		if v := r.header.Get(h); v != "" {
			if strings.HasSuffix(h, "Match") {
				v = storeETagList(v)
			}
			out.Header.Set(h, v)
		}
	}
	resp, err := s.up.do(out)
	if err != nil {
		return 0, "", errInternal(err)
	}
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != http.StatusOK {
		return 0, "", &Error{Status: resp.StatusCode(), Code: statusCode(resp.StatusCode()), Message: http.StatusText(resp.StatusCode())}
	}
	tag := string(resp.Header.Peek("ETag"))
	size, ok := plainSize(int64(resp.Header.ContentLength()), tag)
	if !ok {
		return 0, "", errNotSealed
	}
	return size, tag, nil
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

// plainBody is a decrypted response body. A failure mid-stream is logged
// and returned, which makes fasthttp close the connection: the client sees
// a short body, never tampered plaintext.
type plainBody struct {
	r    io.Reader
	up   *upstreamBody
	log  interface{ Error(string, ...any) }
	what string
	id   string
}

func (b *plainBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.log.Error("aborting response: decryption failed", "id", b.id, "object", b.what, "err", err)
	}
	return n, err
}

func (b *plainBody) Close() error { return b.up.Close() }
