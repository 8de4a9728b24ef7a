package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"

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

// createMultipartUpload seals the object's metadata (its own object key,
// bound to bucket and key) into the upload, as PutObject does.
func (s *Server) createMultipart(r *request) error {
	user, err := userMetadata(r.header)
	if err != nil {
		return err
	}
	obj, err := s.sealNew(r, envelope.LayoutMultipart, &sealedMeta{Size: -1, User: user})
	if err != nil {
		return err
	}
	defer obj.Close()
	out := newOut(http.MethodPost, r.t.RawPath, forwardQuery(r.t.RawQuery))
	copyRequestHeaders(out.Header, r.header)
	out.Header.Set(sealHeader, obj.HeaderValue())
	resp, err := s.up.do(out)
	if err != nil {
		return errInternal(err)
	}
	keyID, _, _ := s.writeKey(r, r.t.Bucket) // checked by sealNew already
	if resp.StatusCode() != http.StatusOK || sameKey(keyID, s.keyFor(r.t.Bucket)) {
		s.sendUpstream(r, resp, false)
		return nil
	}
	// The parts must be sealed under the key the client chose: it travels
	// in the upload id.
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
	id := escapeXMLText(clientUploadID(unescapeXMLText(string(raw)), keyID))
	r.ctx.SetStatusCode(http.StatusOK)
	relayHeaders(&r.ctx.Response.Header, &resp.Header, false)
	r.ctx.SetBody(slices.Concat(body[:i], []byte(id), body[j:]))
	return nil
}

// uploadPart encrypts one part under a fresh part key.
func (s *Server) uploadPart(r *request) error {
	pn, err := strconv.Atoi(r.t.Query.Get("partNumber"))
	if err != nil || pn < 1 || pn > 10000 {
		return errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
	}
	plainLen, err := plainLength(r)
	if err != nil {
		return err
	}
	if plainLen > envelope.MaxPartSize {
		return errEntityTooLarge
	}
	body, err := clientBody(r, plainLen)
	if err != nil {
		return err
	}
	return s.putPart(r, pn, body, plainLen)
}

// putPart encrypts plainLen bytes from src as part pn and stores it.
func (s *Server) putPart(r *request, pn int, src io.Reader, plainLen int64) error {
	dk, err := s.newDataKey(r, r.t.Bucket)
	if err != nil {
		return err
	}
	part, err := envelope.NewPart(dk.Plaintext, envelope.KeyInfo{KeyID: dk.KeyID, Wrapped: dk.Ciphertext},
		r.t.Bucket, r.t.Key, pn, plainLen)
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

// completeMultipart forwards CompleteMultipartUpload with the part ETags
// mapped back to the store's.
func (s *Server) completeMultipart(r *request) error {
	body, err := s.readSmallBody(r)
	if err != nil {
		return err
	}
	body = etagElement.ReplaceAllFunc(body, func(m []byte) []byte {
		inner := m[len("<ETag>") : len(m)-len("</ETag>")]
		return []byte("<ETag>" + escapeQuotes(storeETag(unescapeQuotes(string(inner)))) + "</ETag>")
	})
	return s.relay(r, body)
}

var etagElement = regexp.MustCompile(`<ETag>[^<]*</ETag>`)

// uploadPartCopy decrypts the source range through the proxy and encrypts
// it as the new part: the ciphertext of another object cannot be reused,
// since every part is sealed to its own object.
func (s *Server) uploadPartCopy(r *request) error {
	pn, err := strconv.Atoi(r.t.Query.Get("partNumber"))
	if err != nil || pn < 1 || pn > 10000 {
		return errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
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
	if po.n > envelope.MaxPartSize {
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
	if r.clientUploadID != "" {
		if _, i, j, ok := element(body, "UploadId"); ok {
			body = slices.Concat(body[:i], []byte(escapeXMLText(r.clientUploadID)), body[j:])
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

// partLayout is where each part of a multipart object lies.
type partLayout struct {
	lens        []int64 // plaintext length of each part, in order
	nums        []int   // S3 part number of each part
	plainStart  []int64 // plaintext offset of each part
	storedStart []int64 // stored offset of each part
	// exact is false for a layout guessed from the first part (all parts
	// the same size but the last, numbered 1..N); such a guess is checked
	// against every part header read, and replaced by the exact layout if
	// a header disagrees.
	exact bool
}

func newLayout(lens []int64, nums []int, exact bool) *partLayout {
	l := &partLayout{lens: lens, nums: nums, exact: exact,
		plainStart: make([]int64, len(lens)), storedStart: make([]int64, len(lens))}
	var p, st int64
	for i, n := range lens {
		l.plainStart[i], l.storedStart[i] = p, st
		p += n
		st += n + envelope.PartOverhead
	}
	return l
}

// find returns the index of the part holding plaintext offset off.
func (l *partLayout) find(off int64) int {
	return sort.Search(len(l.lens), func(i int) bool { return l.plainStart[i]+l.lens[i] > off })
}

// layoutCache remembers part layouts by object version, bounded.
type layoutCache struct {
	mu    sync.Mutex
	m     map[string]*partLayout
	order []string
	max   int
}

func (c *layoutCache) get(k string) *partLayout {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *layoutCache) put(k string, l *partLayout) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*partLayout)
	}
	if _, ok := c.m[k]; !ok {
		c.order = append(c.order, k)
		if len(c.order) > c.max {
			delete(c.m, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.m[k] = l
}

func (c *layoutCache) forget(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

func layoutKey(rq *readReq, storeTag string) string {
	return rq.bucket + "\x00" + rq.key + "\x00" + storeTag
}

// partLayout returns the object's part layout: cached, or guessed from its
// first part header.
func (s *Server) partLayout(rq *readReq, po *plainObject, stored int64) (*partLayout, error) {
	key := layoutKey(rq, po.storeTag)
	if l := s.layouts.get(key); l != nil {
		return l, nil
	}
	ph, err := s.readPartHeader(rq, po.storeTag, 0)
	if err != nil {
		return nil, err
	}
	n := po.parts
	p1 := ph.PlainLen()
	last := stored - int64(n)*envelope.PartOverhead - int64(n-1)*p1
	if ph.PartNumber() == 1 && last >= 0 && last <= p1 && (n > 1 || last == p1) {
		lens, nums := make([]int64, n), make([]int, n)
		for i := range lens {
			lens[i], nums[i] = p1, i+1
		}
		lens[n-1] = last
		l := newLayout(lens, nums, n == 1)
		s.layouts.put(key, l)
		return l, nil
	}
	return s.exactLayout(rq, po.storeTag, stored, n)
}

// exactLayout reads every part header in turn: one small request per part,
// only for objects whose parts are not all the same size.
func (s *Server) exactLayout(rq *readReq, storeTag string, stored int64, parts int) (*partLayout, error) {
	lens, nums := make([]int64, 0, parts), make([]int, 0, parts)
	var off int64
	for i := 0; i < parts; i++ {
		ph, err := s.readPartHeader(rq, storeTag, off)
		if err != nil {
			return nil, err
		}
		lens, nums = append(lens, ph.PlainLen()), append(nums, ph.PartNumber())
		off += ph.CiphertextSize()
	}
	if off != stored {
		return nil, errDecrypt(fmt.Errorf("parts add up to %d stored bytes, object has %d", off, stored))
	}
	l := newLayout(lens, nums, true)
	s.layouts.put(layoutKey(rq, storeTag), l)
	return l, nil
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

// openPartRange streams plaintext [po.off, po.off+po.n) of a multipart
// object: it opens the first part from its header, then asks the store for
// exactly the stored bytes from there to the end of the range.
func (s *Server) openPartRange(r *request, rq *readReq, po *plainObject, l *partLayout) (io.Reader, func(), error) {
	first := l.find(po.off)
	lastIdx := l.find(po.off + po.n - 1)
	if po.n == 0 || first >= len(l.lens) || lastIdx >= len(l.lens) {
		return nil, nil, errInvalidRange(po.size, "")
	}
	ph, err := s.readPartHeader(rq, po.storeTag, l.storedStart[first])
	if err != nil {
		return nil, nil, err
	}
	if ph.PartNumber() != l.nums[first] || ph.PlainLen() != l.lens[first] {
		return nil, nil, errLayout
	}
	if lastIdx != first && !l.exact {
		// With both ends of the range where the layout says, the parts in
		// between add up to what it says too, whatever their sizes.
		lh, err := s.readPartHeader(rq, po.storeTag, l.storedStart[lastIdx])
		if err != nil {
			return nil, nil, err
		}
		if lh.PartNumber() != l.nums[lastIdx] || lh.PlainLen() != l.lens[lastIdx] {
			return nil, nil, errLayout
		}
	}
	pb, pk := po.meta.partsPath(rq.bucket, rq.key)
	part, err := s.openPart(kmsContext(r, pb, pk), pb, pk, ph)
	if err != nil {
		return nil, nil, err
	}
	inOff := po.off - l.plainStart[first]
	inN := min(po.n, l.lens[first]-inOff)
	cOff, _ := envelope.PartCipherRange(ph, inOff, inN)
	endIn := po.off + po.n - l.plainStart[lastIdx]
	eOff, eLen := envelope.PartStoredRange(l.lens[lastIdx], 0, endIn)
	from := l.storedStart[first] + cOff
	to := l.storedStart[lastIdx] + eOff + eLen // exclusive
	out := newOut(http.MethodGet, rq.rawPath, rq.query)
	out.Header.Set("If-Match", po.storeTag)
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to-1))
	resp, err := s.up.do(out)
	if err != nil {
		part.Close()
		return nil, nil, errInternal(err)
	}
	closeAll := func() { part.Close(); resp.CloseBodyStream(); fasthttp.ReleaseResponse(resp) }
	if st := resp.StatusCode(); st != http.StatusPartialContent {
		closeAll()
		return nil, nil, errInternal(fmt.Errorf("range of multipart object: store answered %d", st))
	}
	src := resp.BodyStream()
	if src == nil {
		src = bytes.NewReader(resp.Body())
	}
	ps := &partStream{s: s, ctx: kmsContext(r, pb, pk), bucket: pb, key: pk, src: src,
		remaining: po.n, next: first + 1, parts: len(l.lens), layout: l, layoutKey: layoutKey(rq, po.storeTag),
		cur: part.DecryptReader(src, inOff, inN), curPart: part}
	return ps, closeAll, nil
}

var errLayout = errors.New("part header does not match the expected part layout")

// openPart unwraps a part's data key and opens the part.
func (s *Server) openPart(ctx context.Context, bucket, key string, ph *envelope.PartHeader) (*envelope.Part, error) {
	ki := ph.KeyInfo()
	dek, err := s.kms.Decrypt(ctx, ki.KeyID, ki.Wrapped, kms.BucketContext(bucket))
	if err != nil {
		return nil, fromKMSError(err)
	}
	defer kms.Zero(dek)
	part, err := envelope.OpenPart(ph, dek, bucket, key)
	if err != nil {
		return nil, errDecrypt(fmt.Errorf("open part %d of %s/%s: %w", ph.PartNumber(), bucket, key, err))
	}
	return part, nil
}

// partStream decrypts consecutive stored parts. Each next part's header
// comes from the stream itself and is checked against the layout (if any)
// and for increasing part numbers.
type partStream struct {
	s           *Server
	ctx         context.Context
	bucket, key string // where the parts were sealed
	src         io.Reader
	remaining   int64 // plaintext still to deliver
	next        int   // index of the next part to read from src
	parts       int
	layout      *partLayout // nil when reading the whole object
	layoutKey   string
	full        bool // the whole object: every part must be read
	lastNum     int
	cur         io.Reader
	curPart     *envelope.Part
	err         error
}

func (p *partStream) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	for {
		if p.cur == nil {
			// A whole-object read reads every part, trailing empty ones too.
			if p.remaining == 0 && (!p.full || p.next == p.parts) {
				return 0, io.EOF
			}
			if err := p.nextPart(); err != nil {
				p.err = err
				return 0, err
			}
		}
		if p.remaining == 0 {
			// The range ends inside this part: let the part reader reach
			// its end, which authenticates the last segment it read.
			if n, err := io.Copy(io.Discard, p.cur); err != nil || n != 0 {
				p.err = fmt.Errorf("part ran past the requested range (%d bytes): %v", n, err)
				return 0, p.err
			}
			p.endPart()
			continue
		}
		lim := b
		if int64(len(lim)) > p.remaining {
			lim = lim[:p.remaining]
		}
		n, err := p.cur.Read(lim)
		p.remaining -= int64(n)
		switch {
		case err == io.EOF:
			p.endPart()
			if n > 0 {
				return n, nil
			}
		case err != nil:
			p.err = err
			return n, err
		default:
			return n, nil
		}
	}
}

// WriteTo hands each part's decrypting reader to w whole, so that the
// envelope's batched WriteTo (several segments per write) serves multipart
// objects too; Read would go through io.Copy's 32 KiB buffer.
func (p *partStream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for p.err == nil {
		if p.cur == nil {
			// A whole-object read reads every part, trailing empty ones too.
			if p.remaining == 0 && (!p.full || p.next == p.parts) {
				return total, nil
			}
			if err := p.nextPart(); err != nil {
				p.err = err
				break
			}
		}
		n, err := writeThrough(w, p.cur)
		total += n
		p.remaining -= n
		switch {
		case err != nil:
			p.err = err
		case p.remaining < 0:
			p.err = fmt.Errorf("part ran past the requested range by %d bytes", -p.remaining)
		default:
			p.endPart()
		}
	}
	return total, p.err
}

func (p *partStream) endPart() {
	p.curPart.Close()
	p.cur, p.curPart = nil, nil
}

func (p *partStream) nextPart() error {
	if p.next >= p.parts {
		return fmt.Errorf("object ends after %d parts with %d bytes still expected", p.parts, p.remaining)
	}
	var hdr [envelope.PartHeaderSize]byte
	if _, err := io.ReadFull(p.src, hdr[:]); err != nil {
		return fmt.Errorf("reading header of part %d: %w", p.next+1, err)
	}
	ph, err := envelope.ParsePartHeader(hdr[:])
	if err != nil {
		return err
	}
	if ph.PartNumber() <= p.lastNum {
		return fmt.Errorf("part number %d after %d", ph.PartNumber(), p.lastNum)
	}
	// Between the two verified ends of a range only the numbering is
	// checked: it pins the count of parts in between.
	if l := p.layout; l != nil && ph.PartNumber() != l.nums[p.next] {
		p.s.layouts.forget(p.layoutKey)
		return errLayout
	}
	part, err := p.s.openPart(p.ctx, p.bucket, p.key, ph)
	if err != nil {
		return err
	}
	p.lastNum = ph.PartNumber()
	p.next++
	m := min(p.remaining, ph.PlainLen())
	p.cur, p.curPart = part.DecryptReader(p.src, 0, m), part
	return nil
}
