package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/envelope"
	"github.com/valyala/fasthttp"
)

// conditionHeaders are the GET/HEAD conditions forwarded to the store
// (ETags mapped) so that it evaluates them against the stored version.
var conditionHeaders = []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}

// responseOverrides are GetObject's query parameters that set a response
// header.
var responseOverrides = map[string]string{
	"response-content-type": "Content-Type", "response-content-language": "Content-Language",
	"response-expires": "Expires", "response-cache-control": "Cache-Control",
	"response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding",
}

// readReq is a GET or HEAD of an object's plaintext, or a range of it.
type readReq struct {
	bucket, key    string
	rawPath, query string // query: the client's, auth parameters removed
	cond           http.Header
	br             *byteRange // nil: whole object
	head           bool
	partNumber     int // > 0: GET/HEAD ?partNumber=
}

// plainObject is an opened object: the store's response headers, its
// plaintext size, and (for GET) a reader of the requested plaintext.
type plainObject struct {
	resp     *fasthttp.Response // headers to relay; owned until Close
	storeTag string
	size     int64
	parts    int // 0 for single-part objects
	version  int // format version of the object's header
	meta     *envelope.Meta
	off, n   int64
	ranged   bool
	body     io.Reader // plaintext [off, off+n); nil for HEAD
	closers  []func()
}

func (p *plainObject) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// upstreamReply is a store response the client gets as it is (errors,
// 304 Not Modified).
type upstreamReply struct{ resp *fasthttp.Response }

func (u *upstreamReply) Error() string { return fmt.Sprintf("store answered %d", u.resp.StatusCode()) }

// getObject serves GetObject and HeadObject.
func (s *Server) getObject(r *request, head bool) error {
	rq := &readReq{
		bucket: r.t.Bucket, key: r.t.Key, rawPath: r.t.RawPath,
		query: forwardQuery(r.t.RawQuery), cond: http.Header{}, head: head,
	}
	for _, h := range conditionHeaders {
		if v := r.header.Get(h); v != "" {
			if strings.HasSuffix(h, "Match") {
				v = storeETagList(v)
			}
			rq.cond.Set(h, v)
		}
	}
	if pn := r.t.Query.Get("partNumber"); pn != "" {
		n, err := strconv.Atoi(pn)
		if err != nil || n < 1 || n > 10000 {
			return errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
		}
		rq.partNumber = n
		// The store's part n is ciphertext framing; the proxy finds the
		// part's plaintext itself.
		rq.query = dropParam(rq.query, "partNumber")
	}
	if br, ok := parseRange(r.header.Get("Range")); ok && rq.partNumber == 0 {
		rq.br = br
	}
	po, err := s.openPlain(r, rq)
	if err != nil {
		if ur, ok := err.(*upstreamReply); ok {
			status := ur.resp.StatusCode()
			s.sendUpstream(r, ur.resp, status == http.StatusNotModified)
			if status == http.StatusNotModified {
				r.ctx.Response.Header.Set("ETag", clientETag(string(ur.resp.Header.Peek("ETag"))))
			}
			return nil
		}
		return err
	}
	ctx := r.ctx
	relayHeaders(&ctx.Response.Header, &po.resp.Header, true)
	if po.version >= 2 {
		// Content headers come from the sealed metadata only: the store
		// must not be able to make a browser render an object as HTML.
		for _, k := range contentHeaders {
			ctx.Response.Header.Del(k)
		}
		ctx.Response.Header.Set("Content-Type", "binary/octet-stream") // S3's default
		for k, v := range po.meta.Headers {
			ctx.Response.Header.Set(k, v)
		}
		// GetObject's response-* parameters (presigned downloads) still
		// override them, as S3 does for the client that signed them.
		for param, k := range responseOverrides {
			if v := r.t.Query.Get(param); v != "" {
				ctx.Response.Header.Set(k, v)
			}
		}
	}
	ctx.Response.Header.Set("ETag", clientETag(po.storeTag))
	ctx.Response.Header.Set("Accept-Ranges", "bytes")
	setUserMetadata(ctx.Response.Header.Set, po.meta.User)
	if md5 := po.meta.MD5; md5 != "" && po.meta.User["md5chksum"] == "" {
		// Our ETags are not MD5s, so sync tools look for the plaintext MD5
		// where rclone keeps it; serve the one the proxy verified.
		ctx.Response.Header.Set("x-amz-meta-md5chksum", md5)
	}
	if po.parts > 0 && rq.partNumber > 0 {
		ctx.Response.Header.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(po.parts))
	}
	if strings.EqualFold(r.header.Get("X-Amz-Checksum-Mode"), "ENABLED") && !po.ranged {
		// Only checksums of the plaintext the client gave are shown; the
		// store's own are of the ciphertext.
		for name, v := range po.meta.Checksum {
			ctx.Response.Header.Set(name, v)
		}
	}
	if po.ranged && po.n > 0 {
		ctx.SetStatusCode(http.StatusPartialContent)
		ctx.Response.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", po.off, po.off+po.n-1, po.size))
	} else {
		ctx.SetStatusCode(http.StatusOK)
	}
	if head {
		po.Close()
		ctx.Response.Header.SetContentLength(int(po.n))
		ctx.Response.SkipBody = true
		return nil
	}
	// Decrypt the first piece before committing to a status, so that a
	// damaged object usually fails with a clean error rather than a cut
	// connection.
	first := make([]byte, min(po.n, 64<<10))
	if _, err := io.ReadFull(po.body, first); err != nil {
		po.Close()
		return errDecrypt(fmt.Errorf("%s/%s: %w", r.t.Bucket, r.t.Key, err))
	}
	ctx.SetBodyStream(&plainBody{
		r: io.MultiReader(bytes.NewReader(first), po.body), po: po, s: s,
		what: r.t.Bucket + "/" + r.t.Key, id: r.id,
	}, int(po.n))
	return nil
}

// openPlain opens the plaintext an rq asks for. For a single-part object
// it costs one upstream request (two for a suffix range); a range of a
// multipart object costs one more to read the first part's header, plus
// the part layout once per object version (cached).
func (s *Server) openPlain(r *request, rq *readReq) (*plainObject, error) {
	method := http.MethodGet
	if rq.head {
		method = http.MethodHead
	}
	br := rq.br
	cond := rq.cond.Clone()
	if br != nil && br.suffixSet {
		// A suffix range needs the plaintext size to find its first
		// segment: ask for it first, and pin the version we will read.
		size, etag, err := s.statSize(rq, cond)
		if err != nil {
			return nil, err
		}
		off, n, ok := br.resolve(size)
		if !ok {
			return nil, errInvalidRange(size, br.raw)
		}
		br = &byteRange{start: off, end: off + n - 1, raw: br.raw}
		if cond.Get("If-Match") == "" {
			cond.Set("If-Match", etag)
		}
	}
	out := newOut(method, rq.rawPath, rq.query)
	for k, v := range cond {
		out.Header[k] = v
	}
	if br != nil && !rq.head {
		// Ask for whole segments, assuming a single-part object (the usual
		// case); the store clamps the end to the object. An open range
		// stays open: not every store clamps a far end.
		end := br.end
		if end < 0 {
			end = br.start
		}
		alignedEnd := (end/envelope.SegmentSize + 1) * envelope.SegmentSize
		coff, clen := envelope.CipherRange(alignedEnd, br.start, end-br.start+1)
		if br.end < 0 {
			out.Header.Set("Range", fmt.Sprintf("bytes=%d-", coff))
		} else {
			out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", coff, coff+clen-1))
		}
	}
	resp, err := s.up.do(out)
	if err != nil {
		return nil, errInternal(fmt.Errorf("upstream %s: %w", method, err))
	}
	status := resp.StatusCode()
	if status == http.StatusRequestedRangeNotSatisfiable {
		fasthttp.ReleaseResponse(resp)
		size, _, err := s.statSize(rq, cond)
		if err != nil {
			return nil, err
		}
		return nil, errInvalidRange(size, br.raw)
	}
	if status != http.StatusOK && status != http.StatusPartialContent {
		return nil, &upstreamReply{resp}
	}
	po := &plainObject{resp: resp, storeTag: string(resp.Header.Peek("ETag"))}
	po.closers = append(po.closers, func() { resp.CloseBodyStream(); fasthttp.ReleaseResponse(resp) })
	fail := func(err error) (*plainObject, error) { po.Close(); return nil, err }

	stored, cipherOff, err := storedExtent(resp, status)
	if err != nil {
		return fail(errInternal(err))
	}
	headerValue := string(resp.Header.Peek(sealHeader))
	obj, meta, err := s.openSealed(r, headerValue, rq.bucket, rq.key)
	if err != nil {
		return fail(err)
	}
	po.closers = append(po.closers, obj.Close)
	po.meta, po.version = meta, obj.Version()
	po.parts = envelope.PartsInETag(po.storeTag)
	if po.size, err = obj.PlainSize(meta, stored, po.storeTag); err != nil {
		return fail(errDecrypt(fmt.Errorf("%s/%s: %w", rq.bucket, rq.key, err)))
	}
	// A multipart object is read only through its part map, verified
	// against the sealed manifest before any plaintext is read. HEAD checks
	// it too (cached, so once per object version and instance): an object
	// whose parts are not the ones it was completed with does not exist as
	// far as clients can tell.
	var pm *envelope.PartMap
	if po.parts > 0 {
		if pm, err = s.partMap(rq, po.storeTag, headerValue, stored, po.version, meta); err != nil {
			return fail(err)
		}
	}

	// What plaintext was asked for.
	po.off, po.n = 0, po.size
	var ok bool
	switch {
	case rq.partNumber > 0 && po.parts == 0:
		if rq.partNumber != 1 {
			return fail(errInvalidPartNumber())
		}
	case rq.partNumber > 0:
		if rq.partNumber > po.parts {
			return fail(errInvalidPartNumber())
		}
		_, po.off, po.n, _ = pm.Part(rq.partNumber - 1)
		po.ranged = true
	case br != nil:
		if po.off, po.n, ok = br.resolve(po.size); !ok {
			return fail(errInvalidRange(po.size, br.raw))
		}
		po.ranged = true
	}
	if rq.head {
		return po, nil
	}

	src := resp.BodyStream()
	if src == nil {
		src = bytes.NewReader(resp.Body())
	}
	if po.parts == 0 {
		if want, _ := envelope.CipherRange(po.size, po.off, po.n); want != cipherOff {
			return fail(errInternal(fmt.Errorf("store returned range at %d, want %d", cipherOff, want)))
		}
		po.body = obj.DecryptReader(src, po.size, po.off, po.n)
		return po, nil
	}
	if po.n == 0 { // an empty object or part: the verified map says so
		resp.CloseBodyStream()
		po.body = bytes.NewReader(nil)
		return po, nil
	}
	open := s.partOpener(r, rq.bucket, rq.key, meta)
	if !po.ranged && status == http.StatusOK {
		// The whole object is on its way: decrypt it part after part.
		po.body = envelope.MultipartReader(src, pm, nil, 0, po.n, open)
		return po, nil
	}
	// A range of a multipart object: the first response was aligned for a
	// single-part object and is of no use.
	resp.CloseBodyStream()
	f, err := pm.FetchRange(po.off, po.n)
	if err != nil {
		return fail(errInternal(err))
	}
	var first *envelope.PartHeader
	if !f.HeaderInline {
		if first, err = s.readPartHeader(rq, po.storeTag, f.FirstOffset); err != nil {
			return fail(err)
		}
	}
	out = newOut(http.MethodGet, rq.rawPath, rq.query)
	out.Header.Set("If-Match", po.storeTag)
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", f.From, f.To-1))
	rresp, err := s.up.do(out)
	if err != nil {
		return fail(errInternal(err))
	}
	po.closers = append(po.closers, func() { rresp.CloseBodyStream(); fasthttp.ReleaseResponse(rresp) })
	if st := rresp.StatusCode(); st != http.StatusPartialContent {
		return fail(errInternal(fmt.Errorf("range of multipart object: store answered %d", st)))
	}
	rsrc := rresp.BodyStream()
	if rsrc == nil {
		rsrc = bytes.NewReader(rresp.Body())
	}
	po.body = envelope.MultipartReader(rsrc, pm, first, po.off, po.n, open)
	return po, nil
}

func errInvalidPartNumber() *Error {
	return s3err(http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber", "The requested partnumber is not satisfiable")
}

// dropParam removes one parameter from a raw query, leaving the rest byte
// for byte.
func dropParam(rawQuery, name string) string {
	parts := strings.Split(rawQuery, "&")
	kept := parts[:0]
	for _, p := range parts {
		if k, _, _ := strings.Cut(p, "="); k != name {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "&")
}

// statSize HEADs the object for its plaintext size and store ETag.
func (s *Server) statSize(rq *readReq, cond http.Header) (int64, string, error) {
	out := newOut(http.MethodHead, rq.rawPath, rq.query)
	for k, v := range cond {
		out.Header[k] = v
	}
	resp, err := s.up.do(out)
	if err != nil {
		return 0, "", errInternal(err)
	}
	if resp.StatusCode() != http.StatusOK {
		return 0, "", &upstreamReply{resp}
	}
	defer fasthttp.ReleaseResponse(resp)
	tag := string(resp.Header.Peek("ETag"))
	size, ok := envelope.ListedSize(int64(resp.Header.ContentLength()), tag)
	if !ok {
		return 0, "", errNotSealed
	}
	return size, tag, nil
}

// plainBody is a decrypted response body. A failure mid-stream is logged
// and returned, which makes fasthttp close the connection: the client sees
// a short body, never tampered plaintext.
type plainBody struct {
	r    io.Reader
	po   *plainObject
	s    *Server
	what string
	id   string
}

func (b *plainBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.s.log.Error("aborting response: decryption failed", "id", b.id, "object", b.what, "err", err)
	}
	return n, err
}

// WriteTo hands the decrypting reader's own WriteTo to fasthttp: segments
// are opened in batches and written straight out, with no extra copy.
func (b *plainBody) WriteTo(w io.Writer) (int64, error) {
	n, err := writeThrough(w, b.r)
	if err != nil {
		b.s.log.Error("aborting response", "id", b.id, "object", b.what, "err", err)
	}
	return n, err
}

// writeThrough copies r to w with r's own WriteTo if it has one (the
// envelope readers' batched one), else through a plain copy loop.
func writeThrough(w io.Writer, r io.Reader) (int64, error) {
	if wt, ok := r.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{r})
}

func (b *plainBody) Close() error {
	b.po.Close()
	return nil
}
