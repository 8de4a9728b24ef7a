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
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// readReq is a GET or HEAD of an object's plaintext, or a range of it.
type readReq struct {
	bucket, key    string
	rawPath, query string // query: the client's, auth parameters removed
	cond           http.Header
	br             *s3wire.ByteRange // nil: whole object
	head           bool
	partNumber     int // > 0: GET/HEAD ?partNumber=
}

// plainObject is an opened object: the store's response headers, its
// plaintext size, and (for GET) a reader of the requested plaintext.
type plainObject struct {
	resp     *fasthttp.Response // headers to relay; owned until Close
	storeTag string
	size     int64
	parts    int    // 0 for single-part objects
	version  int    // format version of the object's header
	keyID    string // the KMS key of the object's header
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
func (s *Server) getObject(r *request) error {
	head := r.op == s3wire.HeadObject
	rq := &readReq{
		bucket: r.t.Bucket, key: r.t.Key, rawPath: r.t.RawPath,
		query: r.storeQuery, cond: s3wire.Conditions(r.header), head: head,
	}
	// A condition naming a multipart ETag may name the sealed one, which
	// the store does not know: the proxy evaluates the conditions on the
	// version it reads, which is the one it would serve, so nothing races.
	local := s3wire.LocalConditions(r.header)
	if local {
		rq.cond = http.Header{}
	}
	if pn := r.t.Query.Get("partNumber"); pn != "" {
		n, err := s3wire.ParsePartNumber(pn)
		if err != nil {
			return err
		}
		rq.partNumber = n
		// The store's part n is ciphertext framing; the proxy finds the
		// part's plaintext itself.
		rq.query = s3wire.DropParam(rq.query, "partNumber")
	}
	if br, ok := s3wire.ParseRange(r.header.Get("Range")); ok && rq.partNumber == 0 {
		rq.br = br
	}
	po, err := s.openPlain(r, rq)
	if err != nil {
		if ur, ok := err.(*upstreamReply); ok {
			status := ur.resp.StatusCode()
			s.sendUpstream(r, ur.resp, status == http.StatusNotModified)
			if status == http.StatusNotModified {
				r.ctx.Response.Header.Set("ETag", s.shownETag(r, &ur.resp.Header, rq.bucket, rq.key))
			}
			return nil
		}
		return err
	}
	ctx := r.ctx
	shown := s3wire.ObjectETag(po.storeTag, po.meta.ETag)
	if local {
		lastModified := string(po.resp.Header.Peek("Last-Modified"))
		switch s3wire.CheckReadConditions(r.header, po.storeTag, po.meta.ETag, lastModified) {
		case http.StatusPreconditionFailed:
			po.Close()
			return s3wire.ErrPreconditionFailed
		case http.StatusNotModified:
			po.Close()
			ctx.SetStatusCode(http.StatusNotModified)
			ctx.Response.Header.Set("ETag", shown)
			ctx.Response.Header.Set("Last-Modified", lastModified)
			ctx.Response.SkipBody = true
			return nil
		}
	}
	relayHeaders(&ctx.Response.Header, &po.resp.Header, true)
	if po.version >= 2 {
		// Content headers come from the sealed metadata only: the store
		// must not be able to make a browser render an object as HTML.
		for _, k := range s3wire.ContentHeaders {
			ctx.Response.Header.Del(k)
		}
		ctx.Response.Header.Set("Content-Type", "binary/octet-stream") // S3's default
		for k, v := range po.meta.Headers {
			ctx.Response.Header.Set(k, v)
		}
		// GetObject's response-* parameters (presigned downloads) still
		// override them, as S3 does for the client that signed them.
		for param, k := range s3wire.ResponseOverrides {
			if v := r.t.Query.Get(param); v != "" {
				ctx.Response.Header.Set(k, v)
			}
		}
	}
	ctx.Response.Header.Set("ETag", shown)
	ctx.Response.Header.Set("Accept-Ranges", "bytes")
	s3wire.SetUserMetadata(ctx.Response.Header.Set, po.meta.User)
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
		if len(po.meta.Checksum) > 0 {
			ctx.Response.Header.Set("X-Amz-Checksum-Type", checksumType(po.meta))
		}
	}
	if po.ranged && po.n > 0 {
		ctx.SetStatusCode(http.StatusPartialContent)
		ctx.Response.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", po.off, po.off+po.n-1, po.size))
	} else {
		ctx.SetStatusCode(http.StatusOK)
	}
	r.sse = sse{alg: s3wire.SSEKMS, keyID: po.keyID}
	if head {
		po.Close()
		ctx.Response.Header.SetContentLength(int(po.n))
		ctx.Response.SkipBody = true
		r.echoSSE()
		return nil
	}
	// Decrypt the first piece before committing to a status, so that a
	// damaged object usually fails with a clean error rather than a cut
	// connection.
	first := make([]byte, min(po.n, 64<<10))
	if _, err := io.ReadFull(po.body, first); err != nil {
		po.Close()
		// A part's key the KMS refuses (disabled, deleted, out of reach)
		// is the KMS's error, as for the object header: not damage.
		var se *s3wire.Error
		if errors.As(err, &se) {
			return err
		}
		return s3wire.Damaged(fmt.Errorf("%s/%s: %w", r.t.Bucket, r.t.Key, err))
	}
	r.streamBody(&plainBody{
		r: &prefixed{first: first, rest: po.body}, po: po, s: s,
		what: r.t.Bucket + "/" + r.t.Key, id: r.id,
	}, int(po.n))
	r.echoSSE()
	return nil
}

// openCopySource is openPlain for the source of a copy that reads it
// (UploadPartCopy, a copy computing a checksum): the store's refusal is the
// copy-source error S3 gives.
func (s *Server) openCopySource(r *request, rq *readReq) (*plainObject, error) {
	po, err := s.openPlain(r, rq)
	if ur, ok := err.(*upstreamReply); ok {
		st := ur.resp.StatusCode()
		fasthttp.ReleaseResponse(ur.resp)
		return nil, s3wire.CopySourceError(st)
	}
	return po, err
}

// openPlain opens the plaintext an rq asks for. For a single-part object
// it costs one upstream request (two for a suffix range); a range of a
// multipart object costs one more to read the first part's header, plus
// the part layout once per object version (cached). A range of a
// compressed object costs what readCompressed says.
func (s *Server) openPlain(r *request, rq *readReq) (*plainObject, error) {
	method := http.MethodGet
	if rq.head {
		method = http.MethodHead
	}
	if po, ok, err := s.warmCompressed(r, rq); ok {
		return po, err
	}
	br := rq.br
	cond := rq.cond.Clone()
	// tail is the end of the stored body when the first response was a
	// suffix read (getTail), held in memory: a compressed object's index,
	// and often the bytes asked for, are there.
	var tail *storeTail
	var resp *fasthttp.Response
	var err error
	if br != nil && br.SuffixSet && !rq.head && s.comp != nil && s.comp.mayHold(rq.bucket) {
		// In a bucket that may hold compressed objects, a suffix range
		// starts with a suffix read rather than a HEAD: it brings the
		// headers and stored size as a HEAD does, and the end of the body,
		// which holds a compressed object's index and usually the range.
		if resp, tail, err = s.getTail(rq, cond, suffixTailLen(br.Suffix)); err != nil {
			return nil, err
		}
		if tail == nil {
			// Nothing stored at all (an empty object s3seal did not write).
			fasthttp.ReleaseResponse(resp)
			size, _, err := s.statSize(r, rq, cond)
			if err != nil {
				return nil, err
			}
			return nil, s3wire.InvalidRange(size, br.Raw)
		}
	} else if br != nil && br.SuffixSet {
		// A suffix range needs the plaintext size to find its first
		// segment: ask for it first, and pin the version we will read.
		size, etag, err := s.statSize(r, rq, cond)
		if err != nil {
			return nil, err
		}
		off, n, ok := br.Resolve(size)
		if !ok {
			return nil, s3wire.InvalidRange(size, br.Raw)
		}
		br = &s3wire.ByteRange{Start: off, End: off + n - 1, Raw: br.Raw}
		if cond.Get("If-Match") == "" {
			cond.Set("If-Match", etag)
		}
	}
	out := upstream.NewRequest(method, rq.rawPath, rq.query)
	for k, v := range cond {
		out.Header[k] = v
	}
	if tail == nil && br != nil && !rq.head {
		// Ask for whole segments, assuming a single-part object (the usual
		// case); the store clamps the end to the object. An open range
		// stays open: not every store clamps a far end.
		end := br.End
		if end < 0 {
			end = br.Start
		}
		alignedEnd := (end/envelope.SegmentSize + 1) * envelope.SegmentSize
		coff, clen := envelope.CipherRange(alignedEnd, br.Start, end-br.Start+1)
		if br.End < 0 {
			out.Header.Set("Range", fmt.Sprintf("bytes=%d-", coff))
		} else {
			out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", coff, coff+clen-1))
		}
	}
	if tail == nil {
		if resp, err = s.up.Do(out); err != nil {
			return nil, s3wire.Internal(fmt.Errorf("upstream %s: %w", method, err))
		}
	}
	status := resp.StatusCode()
	if status == http.StatusRequestedRangeNotSatisfiable {
		fasthttp.ReleaseResponse(resp)
		// The range aligned for an uncompressed object lies past the
		// stored end: the object is compressed (shorter), or the range is
		// past its end. A suffix read brings the headers, the stored size
		// and the end of the body (a compressed object's index) at once.
		if resp, tail, err = s.getTail(rq, cond, indexTailLen); err != nil {
			return nil, err
		}
		if status = resp.StatusCode(); status == http.StatusRequestedRangeNotSatisfiable {
			// Nothing stored at all (an empty object s3seal did not write).
			fasthttp.ReleaseResponse(resp)
			size, _, err := s.statSize(r, rq, cond)
			if err != nil {
				return nil, err
			}
			return nil, s3wire.InvalidRange(size, br.Raw)
		}
		if size, ok := uncompressedSize(resp, status); ok {
			// Not compressed, so the range is past the end: answer as the
			// HEAD this suffix read replaces would have, before opening
			// anything (a multipart object's part map included).
			if _, _, ok := br.Resolve(size); !ok {
				fasthttp.ReleaseResponse(resp)
				return nil, s3wire.InvalidRange(size, br.Raw)
			}
		}
	}
	if status != http.StatusOK && status != http.StatusPartialContent {
		return nil, &upstreamReply{resp}
	}
	po := &plainObject{resp: resp, storeTag: string(resp.Header.Peek("ETag"))}
	po.closers = append(po.closers, func() { resp.CloseBodyStream(); fasthttp.ReleaseResponse(resp) })
	fail := func(err error) (*plainObject, error) { po.Close(); return nil, err }

	stored, cipherOff, err := storedExtent(resp, status)
	if err != nil {
		return fail(s3wire.Internal(err))
	}
	headerValue := string(resp.Header.Peek(s3wire.SealHeader))
	if rq.head {
		if h, err := envelope.ParseHeader(headerValue); err == nil && s.writeOnly(h.KeyInfo()) {
			return s.headWriteOnly(po, rq, br, h, stored)
		}
	}
	obj, meta, err := s.openSealed(r, headerValue, rq.bucket, rq.key)
	if err != nil {
		return fail(err)
	}
	po.closers = append(po.closers, obj.Close)
	po.meta, po.version, po.keyID = meta, obj.Version(), obj.KeyInfo().KeyID
	po.parts = envelope.PartsInETag(po.storeTag)
	if po.size, err = obj.PlainSize(meta, stored, po.storeTag); err != nil {
		return fail(s3wire.Damaged(fmt.Errorf("%s/%s: %w", rq.bucket, rq.key, err)))
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
			return fail(s3wire.ErrInvalidPartNumber)
		}
	case rq.partNumber > 0:
		if rq.partNumber > po.parts {
			return fail(s3wire.ErrInvalidPartNumber)
		}
		_, po.off, po.n, _ = pm.Part(rq.partNumber - 1)
		po.ranged = true
	case br != nil:
		if po.off, po.n, ok = br.Resolve(po.size); !ok {
			return fail(s3wire.InvalidRange(po.size, br.Raw))
		}
		po.ranged = true
	}
	if obj.Flags()&envelope.FlagCompressed != 0 {
		s.rememberSize(po.storeTag, stored, po.size) // for listings
	}
	if rq.head {
		return po, nil
	}

	src := upstream.Body(resp)
	if obj.Compression() != nil {
		return s.readCompressed(rq, po, obj, headerValue, stored, status, tail, cipherOff)
	}
	if po.parts == 0 {
		want, wantLen := envelope.CipherRange(po.size, po.off, po.n)
		switch {
		case tail.covers(want, wantLen):
			src = tail.reader(want, wantLen)
		case tail != nil:
			// A long suffix: the bytes are further back than the suffix
			// read reached.
			if src, err = s.getStored(rq, po, want, wantLen); err != nil {
				return fail(err)
			}
		case want != cipherOff:
			return fail(s3wire.Internal(fmt.Errorf("store returned range at %d, want %d", cipherOff, want)))
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
	// A range that starts or ends inside a compressed part needs that
	// part's block index (FORMAT.md 12.2.3).
	ix, err := s.partIndexes(rq, pm, po.storeTag, headerValue, po.off, po.n, open)
	if err != nil {
		return fail(err)
	}
	f, err := pm.FetchRangeIndexed(po.off, po.n, ix)
	if err != nil {
		return fail(s3wire.Internal(err))
	}
	var first *envelope.PartHeader
	if !f.HeaderInline {
		if first, err = s.readPartHeader(rq, po.storeTag, f.FirstOffset); err != nil {
			return fail(err)
		}
	}
	out = upstream.NewRequest(http.MethodGet, rq.rawPath, rq.query)
	out.Header.Set("If-Match", po.storeTag)
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", f.From, f.To-1))
	rresp, err := s.up.Do(out)
	if err != nil {
		return fail(s3wire.Internal(err))
	}
	po.closers = append(po.closers, func() { rresp.CloseBodyStream(); fasthttp.ReleaseResponse(rresp) })
	if st := rresp.StatusCode(); st != http.StatusPartialContent {
		return fail(s3wire.Internal(fmt.Errorf("range of multipart object: store answered %d", st)))
	}
	po.body = envelope.MultipartReaderIndexed(upstream.Body(rresp), pm, first, po.off, po.n, open, ix)
	return po, nil
}

// readCompressed sets po.body to the plaintext a compressed object's read
// asks for. The whole object streams from the response at hand. A range
// needs the block index (cached per object version; read from tail when
// the first response was a suffix read, else one small ranged request),
// then exactly the blocks that hold the range: from tail or from the first
// response when they lie in it, else with one more request. firstOff is
// where the first response's bytes start in the stored body.
func (s *Server) readCompressed(rq *readReq, po *plainObject, obj *envelope.Object, headerValue string, stored int64, status int, tail *storeTail, firstOff int64) (*plainObject, error) {
	fail := func(err error) (*plainObject, error) { po.Close(); return nil, err }
	if !po.ranged && status == http.StatusOK {
		po.body = obj.DecryptCompressedReader(upstream.Body(po.resp), nil, 0, po.size)
		return po, nil
	}
	if po.n == 0 {
		po.resp.CloseBodyStream()
		po.body = bytes.NewReader(nil)
		return po, nil
	}
	idx, err := s.blockIndex(rq, obj, po.storeTag, headerValue, stored, tail)
	if err != nil {
		return fail(err)
	}
	cOff, cLen, err := idx.CipherRange(po.off, po.n)
	if err != nil {
		return fail(s3wire.Internal(err))
	}
	s.rememberCompressed(rq, po, headerValue, stored, idx)
	var src io.Reader
	switch {
	case tail.covers(cOff, cLen):
		po.resp.CloseBodyStream()
		src = tail.reader(cOff, cLen)
	case tail == nil && status == http.StatusPartialContent && cOff >= firstOff && cOff-firstOff <= maxFirstSkip &&
		cOff+cLen <= firstOff+int64(po.resp.Header.ContentLength()):
		// The blocks lie in the first response (a range near the start,
		// where the compressed and the uncompressed offsets meet): read
		// them from it rather than ask again.
		body := upstream.Body(po.resp)
		if _, err := io.CopyN(io.Discard, body, cOff-firstOff); err != nil {
			return fail(s3wire.Internal(fmt.Errorf("range of compressed object: %w", err)))
		}
		src = io.LimitReader(body, cLen)
	default:
		po.resp.CloseBodyStream()
		if src, err = s.getStored(rq, po, cOff, cLen); err != nil {
			return fail(err)
		}
	}
	po.body = obj.DecryptCompressedReader(src, idx, po.off, po.n)
	return po, nil
}

// getStored fetches stored bytes [off, off+n) of the object version po
// read (If-Match its store ETag); the response is closed with po.
func (s *Server) getStored(rq *readReq, po *plainObject, off, n int64) (io.Reader, error) {
	out := upstream.NewRequest(http.MethodGet, rq.rawPath, rq.query)
	out.Header.Set("If-Match", po.storeTag)
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	rresp, err := s.up.Do(out)
	if err != nil {
		return nil, s3wire.Internal(err)
	}
	po.closers = append(po.closers, func() { rresp.CloseBodyStream(); fasthttp.ReleaseResponse(rresp) })
	if st := rresp.StatusCode(); st != http.StatusPartialContent {
		return nil, s3wire.Internal(fmt.Errorf("range of %s/%s: store answered %d", rq.bucket, rq.key, st))
	}
	if first, _, err := s3wire.ParseContentRange(string(rresp.Header.Peek("Content-Range"))); err != nil || first != off {
		return nil, s3wire.Internal(fmt.Errorf("range of %s/%s: store returned bytes at %d, want %d (%v)", rq.bucket, rq.key, first, off, err))
	}
	return upstream.Body(rresp), nil
}

// statSize HEADs the object for its plaintext size and store ETag. A
// compressed object's size is in its header only.
func (s *Server) statSize(r *request, rq *readReq, cond http.Header) (int64, string, error) {
	out := upstream.NewRequest(http.MethodHead, rq.rawPath, rq.query)
	for k, v := range cond {
		out.Header[k] = v
	}
	resp, err := s.up.Do(out)
	if err != nil {
		return 0, "", s3wire.Internal(err)
	}
	if resp.StatusCode() != http.StatusOK {
		return 0, "", &upstreamReply{resp}
	}
	defer fasthttp.ReleaseResponse(resp)
	tag := string(resp.Header.Peek("ETag"))
	stored := int64(resp.Header.ContentLength())
	hv := string(resp.Header.Peek(s3wire.SealHeader))
	if h, err := envelope.ParseHeader(hv); err == nil && h.Flags()&envelope.FlagCompressed != 0 {
		obj, meta, err := s.openSealed(r, hv, rq.bucket, rq.key)
		if err != nil {
			return 0, "", err
		}
		defer obj.Close()
		size, err := obj.PlainSize(meta, stored, tag)
		if err != nil {
			return 0, "", s3wire.Damaged(fmt.Errorf("%s/%s: %w", rq.bucket, rq.key, err))
		}
		return size, tag, nil
	}
	size, ok := envelope.ListedSize(stored, tag)
	if !ok {
		return 0, "", s3wire.ErrNotSealed
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

// prefixed is first followed by rest, like io.MultiReader, whose WriteTo
// allocates a 32 KiB copy buffer per call (half of what a small GET
// allocated in the proxy: BenchmarkProxySmallAlloc) even when the readers
// write themselves.
type prefixed struct {
	first []byte
	rest  io.Reader
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.rest.Read(b)
}

func (p *prefixed) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if len(p.first) > 0 {
		n, err := w.Write(p.first)
		p.first = p.first[n:]
		total += int64(n)
		if err == nil && len(p.first) > 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			return total, err
		}
	}
	n, err := writeThrough(w, p.rest)
	return total + n, err
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

// uncompressedSize is the plaintext size of the object a GET response
// (status 200 or 206) is of, from its stored size and ETag, when its header
// says it is not compressed (statSize's rule); ok is false otherwise.
func uncompressedSize(resp *fasthttp.Response, status int) (size int64, ok bool) {
	h, err := envelope.ParseHeader(string(resp.Header.Peek(s3wire.SealHeader)))
	if err != nil || h.Flags()&envelope.FlagCompressed != 0 {
		return 0, false
	}
	stored, _, err := storedExtent(resp, status)
	if err != nil {
		return 0, false
	}
	return envelope.ListedSize(stored, string(resp.Header.Peek("ETag")))
}

// storedExtent reads the stored object size and the offset of the returned
// bytes from an upstream GET/HEAD response.
func storedExtent(resp *fasthttp.Response, status int) (size, off int64, err error) {
	if status == http.StatusPartialContent {
		first, total, err := s3wire.ParseContentRange(string(resp.Header.Peek("Content-Range")))
		return total, first, err
	}
	n := resp.Header.ContentLength()
	if n < 0 {
		return 0, 0, errors.New("store sent no Content-Length")
	}
	return int64(n), 0, nil
}

// headWriteOnly answers a HEAD of an object whose data key an RSA key
// wrapped, on an instance that cannot unwrap it (write-only): it cannot
// open the sealed metadata, so it shows what the store knows. The size is
// exact (from the stored size, section 4 of FORMAT.md for single objects,
// C - N*20480 for multipart ones); the ETag derived from the store's (a
// reader that opens the header may show a sealed plaintext ETag); no user
// metadata and no content headers (they are sealed); Last-Modified as the
// store says. Nothing is authenticated: the header is not opened, and a
// multipart object's part map is not read (partNumber is refused).
//
// A compressed object (a copy of one: this instance compresses nothing
// under an RSA key) has its plaintext size sealed, or in its manifest: the
// stored size does not give it. Its HEAD shows the size this instance
// remembers for the object version (a copy it made, as listings do), and
// is refused like a GET otherwise, rather than answered with a wrong size.
func (s *Server) headWriteOnly(po *plainObject, rq *readReq, br *s3wire.ByteRange, h *envelope.Header, stored int64) (*plainObject, error) {
	fail := func(err error) (*plainObject, error) { po.Close(); return nil, err }
	po.meta, po.version, po.keyID = &envelope.Meta{}, h.Version(), h.KeyInfo().KeyID
	po.parts = envelope.PartsInETag(po.storeTag)
	var err error
	switch {
	case h.Flags()&envelope.FlagCompressed != 0:
		size, ok := int64(0), false
		if s.comp != nil {
			size, ok = s.comp.sizes.Get(sizeKey(po.storeTag, stored))
		}
		if !ok {
			return fail(errWriteOnly)
		}
		po.size = size
	case h.Layout() == envelope.LayoutSingle && po.parts == 0:
		po.size, err = envelope.PlaintextSize(stored)
	case h.Layout() == envelope.LayoutMultipart && po.parts > 0:
		po.size, err = envelope.MultipartPlaintextSize(stored, po.parts)
	default:
		err = fmt.Errorf("%w: %v object with store ETag %s", envelope.ErrLayout, h.Layout(), po.storeTag)
	}
	if err != nil {
		return fail(s3wire.Damaged(fmt.Errorf("%s/%s: %w", rq.bucket, rq.key, err)))
	}
	po.meta.Size = po.size
	po.off, po.n = 0, po.size
	switch {
	case rq.partNumber > 0:
		return fail(errWriteOnly)
	case br != nil:
		var ok bool
		if po.off, po.n, ok = br.Resolve(po.size); !ok {
			return fail(s3wire.InvalidRange(po.size, br.Raw))
		}
		po.ranged = true
	}
	return po, nil
}
