package proxy

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// Compression before encryption (issue #22; FORMAT.md 12.2): single PUTs
// to a bucket with compression on are compressed in blocks, unless their
// name or type says they are compressed already or their first block does
// not shrink enough. Multipart uploads are compressed part by part
// (FORMAT.md 12.2.3, multipart.go), each part checked on its own.

// Compression configures compression. The zero value is off everywhere.
type Compression struct {
	// Algorithm is the algorithm for buckets without their own setting;
	// "" leaves them uncompressed.
	Algorithm envelope.Algorithm
	// Buckets maps bucket names to their algorithm; "" turns compression
	// off for that bucket.
	Buckets map[string]envelope.Algorithm
	// Level is how hard buckets without a level of their own compress
	// ("": envelope.LevelDefault); BucketLevels holds those that have one.
	// Written nowhere, so changing it changes nothing for stored objects.
	Level        envelope.Level
	BucketLevels map[string]envelope.Level
	// SkipExtensions (lowercase, without the dot) and SkipContentTypes
	// (media types, lowercase; "video/*" matches a whole type) name
	// content that is compressed already: stored as it comes.
	SkipExtensions   []string
	SkipContentTypes []string
	// MinSaving is the fraction of its first block that compressing must
	// save for an object to be stored compressed (the adaptive check).
	MinSaving float64
	// BlockSize is the compression block size (envelope.DefaultBlockSize
	// if 0).
	BlockSize int
	// SpoolBytes bounds the bytes compressed PUTs hold in temporary files
	// at once while their stored length is learnt (default 8 GiB;
	// negative: no bound); a PUT over it is answered 503 SlowDown.
	SpoolBytes int64
}

// DefaultSkipExtensions and DefaultSkipContentTypes are the formats that
// are compressed (or encrypted) already: compressing them again costs CPU
// and saves nothing.
var (
	DefaultSkipExtensions = []string{
		"7z", "aac", "apk", "avi", "avif", "br", "bz2", "cab", "deb", "docx", "epub", "flac", "flv", "gif", "gpg", "gz",
		"heic", "jar", "jpeg", "jpg", "lz", "lz4", "lzma", "m4a", "m4v", "mkv", "mov", "mp3", "mp4", "odt", "ogg", "opus",
		"parquet", "pdf", "png", "pptx", "rar", "rpm", "s2", "snappy", "sz", "tbz2", "tgz", "txz", "webm", "webp", "whl",
		"xlsx", "xz", "zip", "zst",
	}
	DefaultSkipContentTypes = []string{
		"application/gzip", "application/x-gzip", "application/zip", "application/x-7z-compressed", "application/x-bzip2",
		"application/x-xz", "application/zstd", "application/x-rar-compressed", "application/vnd.rar", "application/pdf",
		"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/heic", "video/*", "audio/*",
	}
)

// DefaultMinSaving is the adaptive check's default: an object whose first
// block compresses by less than 10% is stored uncompressed.
const DefaultMinSaving = 0.10

// compressor holds the configuration and the listing size cache.
type compressor struct {
	cfg   Compression
	exts  map[string]bool
	types map[string]bool
	spool spoolBudget
	sizes *lru.Cache[string, int64] // store ETag + stored size → plaintext size
}

func newCompressor(c Compression) (*compressor, error) {
	if c.BlockSize == 0 {
		c.BlockSize = envelope.DefaultBlockSize
	}
	if c.SpoolBytes == 0 {
		c.SpoolBytes = DefaultPostSpoolBytes
	}
	check := func(a envelope.Algorithm) error {
		if a != "" && a != envelope.AlgS2 && a != envelope.AlgZstd {
			return fmt.Errorf("proxy: compression algorithm %q (want s2 or zstd)", a)
		}
		return nil
	}
	if err := check(c.Algorithm); err != nil {
		return nil, err
	}
	for _, a := range c.Buckets {
		if err := check(a); err != nil {
			return nil, err
		}
	}
	// Every bucket's level must be one of its algorithm's, checked here so
	// that a PUT never meets one that is not.
	if c.Algorithm != "" {
		if err := envelope.CheckLevel(c.Algorithm, c.Level); err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
	}
	for b, a := range c.Buckets {
		if a == "" {
			continue
		}
		if err := envelope.CheckLevel(a, c.level(b)); err != nil {
			return nil, fmt.Errorf("proxy: bucket %s: %w", b, err)
		}
	}
	for b := range c.BucketLevels {
		if a, ok := c.Buckets[b]; ok && a == "" || !ok && c.Algorithm == "" {
			return nil, fmt.Errorf("proxy: bucket %s has a compression level but no compression", b)
		}
	}
	if c.MinSaving < 0 || c.MinSaving >= 1 {
		return nil, fmt.Errorf("proxy: compression minimum saving %v (want 0 <= x < 1)", c.MinSaving)
	}
	if !validBlockSize(c.BlockSize) {
		return nil, fmt.Errorf("proxy: compression block size %d (a power of two from %d to %d)", c.BlockSize, envelope.MinBlockSize, envelope.MaxBlockSize)
	}
	sizes, _ := lru.New[string, int64](100_000) // ~100 B an entry
	z := &compressor{cfg: c, exts: map[string]bool{}, types: map[string]bool{}, spool: spoolBudget{limit: c.SpoolBytes}, sizes: sizes}
	for _, e := range c.SkipExtensions {
		z.exts[strings.ToLower(strings.TrimPrefix(e, "."))] = true
	}
	for _, t := range c.SkipContentTypes {
		z.types[strings.ToLower(t)] = true
	}
	return z, nil
}

func validBlockSize(n int) bool {
	return n >= envelope.MinBlockSize && n <= envelope.MaxBlockSize && n&(n-1) == 0
}

// algorithm is the algorithm for new objects in bucket ("" for none).
func (z *compressor) algorithm(bucket string) envelope.Algorithm {
	if a, ok := z.cfg.Buckets[bucket]; ok {
		return a
	}
	return z.cfg.Algorithm
}

// level is how hard new objects in bucket are compressed.
func (c *Compression) level(bucket string) envelope.Level {
	if l, ok := c.BucketLevels[bucket]; ok {
		return l
	}
	return c.Level
}

// anywhere reports whether any bucket may hold compressed objects.
func (z *compressor) anywhere() bool {
	if z.cfg.Algorithm != "" {
		return true
	}
	for _, a := range z.cfg.Buckets {
		if a != "" {
			return true
		}
	}
	return false
}

// mayHold reports whether bucket may hold compressed objects, so that its
// listings look their sizes up. A bucket whose compression was on once
// and is off now still may: with a global algorithm, or one named for the
// bucket (even ""), it is assumed to.
func (z *compressor) mayHold(bucket string) bool {
	if z.cfg.Algorithm != "" {
		return true
	}
	_, named := z.cfg.Buckets[bucket]
	return named
}

// skip reports whether an object's key or content headers say it is
// compressed already.
func (z *compressor) skip(key, contentType, contentEncoding string) bool {
	if ce := strings.TrimSpace(strings.ToLower(contentEncoding)); ce != "" && ce != "identity" && ce != "aws-chunked" {
		return true // gzip, br, zstd, ...: the client compressed it
	}
	if ext := strings.TrimPrefix(strings.ToLower(path.Ext(key)), "."); ext != "" && z.exts[ext] {
		return true
	}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		if z.types[mt] {
			return true
		}
		if i := strings.IndexByte(mt, '/'); i > 0 && z.types[mt[:i]+"/*"] {
			return true
		}
	}
	return false
}

// compressFor is the algorithm a PutObject of plainLen bytes is
// compressed with, or "".
func (s *Server) compressFor(r *request, plainLen int64) envelope.Algorithm {
	if s.comp == nil || plainLen == 0 || plainLen > envelope.MaxCompressedSize {
		return ""
	}
	alg := s.comp.algorithm(r.t.Bucket)
	if alg == "" || s.comp.skip(r.t.Key, r.header.Get("Content-Type"), r.header.Get("Content-Encoding")) {
		return ""
	}
	if _, asym := s.bucketKey(r.t.Bucket); asym {
		// A write-only (RSA) bucket: the instance that writes cannot unseal
		// the header, and a compressed object's size is only there, so its
		// HEADs and listings would show a wrong size. Not compressed.
		return ""
	}
	return alg
}

// adaptive reads the first block of the body and decides: compressed is
// true when it saves at least MinSaving. body is the whole plaintext
// again, the first block included. On random or encrypted data (restic
// packs, rclone crypt) S2 gives up on a block early, so the check costs
// little beside the PUT itself (README, "Compression").
func (s *Server) adaptive(alg envelope.Algorithm, src io.Reader, plainLen int64) (body io.Reader, compressed bool, err error) {
	first := make([]byte, min(int64(s.comp.cfg.BlockSize), plainLen))
	if _, err := io.ReadFull(src, first); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, false, err
	}
	saving, err := envelope.Saving(alg, first)
	if err != nil {
		return nil, false, err
	}
	return io.MultiReader(bytes.NewReader(first), src), saving >= s.comp.cfg.MinSaving, nil
}

// spoolMem is what a compressed PUT keeps in memory before it spills to a
// temporary file: most compressible objects are small.
const spoolMem = 1 << 20

// spoolCompressed reads the whole sealed compressed body (its length is
// known only at its end, and the store needs it up front): in memory up to
// spoolMem, else in a temporary file within the budget. The body is
// ciphertext already; the spool encrypts it once more under a key of its
// own (post.go's spool). The caller closes the returned closer.
func (s *Server) spoolCompressed(sealed io.Reader, limit int64) (io.Reader, int64, func(), error) {
	buf := make([]byte, min(spoolMem, limit+1)) // a small object's whole body, and no more
	if int64(len(buf)) > limit {
		// Fits in memory whatever it compresses to.
		n, err := io.ReadFull(sealed, buf)
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return bytes.NewReader(buf[:n]), int64(n), func() {}, nil
		}
		if err == nil {
			err = fmt.Errorf("compressed body longer than its bound %d", limit)
		}
		return nil, 0, nil, err
	}
	n, err := io.ReadFull(sealed, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return bytes.NewReader(buf[:n]), int64(n), func() {}, nil
	case err != nil:
		return nil, 0, nil, err
	}
	sp, total, err := spool(io.MultiReader(bytes.NewReader(buf[:n]), sealed), limit, &s.comp.spool)
	if err != nil {
		return nil, 0, nil, err
	}
	return sp, total, func() { sp.Close() }, nil
}

// spoolSealed spools a compressed body sealed from the client's body (read
// through rec, at most limit sealed bytes) for a PUT or UploadPart, and
// turns failures into the client's errors: its own body's failure first
// (nothing has reached the store), a full spool budget 503 SlowDown.
func (s *Server) spoolSealed(r *request, sealed io.Reader, rec *errRecorder, limit int64) (io.Reader, int64, func(), error) {
	body, n, release, err := s.spoolCompressed(sealed, limit)
	if bodyErr := rec.Err(); bodyErr != nil {
		if err == nil {
			release()
		}
		r.ctx.SetConnectionClose()
		return nil, 0, nil, bodyError(bodyErr)
	}
	if errors.Is(err, errSpoolFull) {
		return nil, 0, nil, s3wire.ErrSlowDown
	}
	if err != nil {
		return nil, 0, nil, s3wire.Internal(err)
	}
	return body, n, release, nil
}

// sizeKey names a stored object version in the size cache: its store
// ETag (the MD5 of its stored bytes for a single PUT, which differ for
// every object since every object has its own key) and stored size.
func sizeKey(storeTag string, stored int64) string {
	return fmt.Sprintf("%s/%d", strings.Trim(storeTag, `"`), stored)
}

// rememberSize records a compressed object's plaintext size for listings.
func (s *Server) rememberSize(storeTag string, stored, plain int64) {
	if s.comp != nil && storeTag != "" {
		s.comp.sizes.Add(sizeKey(storeTag, stored), plain)
	}
}

// Parts of an upload in progress. ListParts lists each part's stored size
// and ETag, and a compressed part's stored size does not give its
// plaintext size (FORMAT.md 12.2.3: padded to 5 MiB, or shorter). That
// size is in the part's header (P, offset 12), but S3 has no call that
// reads an uploaded part before CompleteMultipartUpload (GetObject with
// partNumber reads parts of completed objects only; UploadPartCopy copies
// from objects), and UploadPart carries no metadata the store would list.
// The ETag UploadPart answers could carry the size (as it carries a
// verified MD5), but ListParts lists the store's part ETag, the MD5 of the
// stored bytes, which the proxy does not choose; and the stored size could
// only encode it through the padding, whose length FORMAT.md fixes. So an
// instance remembers the plaintext size of every compressed part it
// stores, keyed by upload, part number, the store's part ETag (the MD5 of
// the stored part, whose header holds a fresh part key) and stored size,
// in the listing size cache; ListParts shows it. A part stored through
// another instance, or before a restart, or evicted, shows the size the
// uncompressed rule gives (stored − PartOverhead): wrong for a compressed
// part (README, "Compression"). Either way a ListParts size is only the
// store's word (the cache is looked up with the ETag and size the store
// lists, and the fallback is arithmetic on them): a hostile store can make
// it show any size, as it can list any part; nothing depends on it. The
// object's size comes from the authenticated part headers at completion.

// partSizeKey names a compressed part of an upload in the size cache.
func partSizeKey(storeUploadID string, partNumber int, storeTag string, stored int64) string {
	return fmt.Sprintf("part/%s/%d/%s", storeUploadID, partNumber, sizeKey(storeTag, stored))
}

// rememberPartSize records the plaintext size of a compressed part this
// instance stored, for ListParts.
func (s *Server) rememberPartSize(storeUploadID string, partNumber int, storeTag string, stored, plain int64) {
	if s.comp != nil && storeTag != "" {
		s.comp.sizes.Add(partSizeKey(storeUploadID, partNumber, storeTag, stored), plain)
	}
}

// partSizes returns ListParts' lookup of the compressed parts of the
// request's upload this instance remembers; nil without compression.
func (s *Server) partSizes(r *request) s3wire.PartSizes {
	if s.comp == nil {
		return nil
	}
	return func(pn int, storeTag string, stored int64) (int64, bool) {
		return s.comp.sizes.Get(partSizeKey(r.upload.StoreID, pn, storeTag, stored))
	}
}

// listedSizes returns, for a listing of bucket, the plaintext sizes of the
// single-layout entries whose stored size may not tell it (bucket may hold
// compressed objects): from the cache, else from a HEAD of each (in
// parallel, at most listHeadConcurrency at once), whose header gives it.
// An entry whose HEAD fails keeps the size its stored size gives.
func (s *Server) listedSizes(r *request, doc []byte) func(key, version, storeTag string, stored int64) (int64, bool) {
	if s.comp == nil || !s.comp.mayHold(r.t.Bucket) {
		return nil
	}
	urlKeys := r.t.Query.Get("encoding-type") == "url"
	type miss struct {
		key, version, tag string
		stored            int64
	}
	var misses []miss
	seen := map[string]bool{}
	s3wire.ListingEntries(doc, func(key, version, storeTag string, stored int64) {
		// Multipart entries too: their parts may be compressed (FORMAT.md
		// 12.2.3), and then only the header has the size.
		k := sizeKey(storeTag, stored)
		if _, ok := s.comp.sizes.Get(k); ok || seen[k] {
			return
		}
		seen[k] = true
		if urlKeys {
			key = s3wire.URLDecodeKey(key)
		}
		misses = append(misses, miss{key, version, storeTag, stored})
	})
	sem := make(chan struct{}, listHeadConcurrency)
	done := make(chan struct{})
	for _, m := range misses {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem; done <- struct{}{} }()
			if size, err := s.headSize(r, m.key, m.version, m.tag); err == nil {
				s.comp.sizes.Add(sizeKey(m.tag, m.stored), size)
			} else {
				s.log.Debug("listing: size from the stored size", "id", r.id, "key", m.key, "err", err)
			}
		}()
	}
	for range misses {
		<-done
	}
	return func(key, version, storeTag string, stored int64) (int64, bool) {
		return s.comp.sizes.Get(sizeKey(storeTag, stored))
	}
}

// listHeadConcurrency bounds the HEADs one listing page sends at once.
const listHeadConcurrency = 32

// headSize HEADs one listed object version and returns its plaintext
// size from its header: the sealed size of a compressed object, the size
// its stored size gives for any other. It fails if the object is gone,
// changed since the listing (another ETag), or not readable.
func (s *Server) headSize(r *request, key, version, storeTag string) (int64, error) {
	out := upstream.NewRequest(http.MethodHead, s3wire.EscapePath(r.t.Bucket, key), versionQuery(version))
	out.Header.Set("If-Match", storeTag)
	resp, err := s.up.Do(out)
	if err != nil {
		return 0, err
	}
	defer fasthttp.ReleaseResponse(resp)
	if st := resp.StatusCode(); st != http.StatusOK {
		return 0, fmt.Errorf("store answered %d", st)
	}
	stored := int64(resp.Header.ContentLength())
	hv := string(resp.Header.Peek(s3wire.SealHeader))
	h, err := envelope.ParseHeader(hv)
	if err != nil {
		return 0, err
	}
	if h.Flags()&envelope.FlagCompressed == 0 {
		if size, ok := envelope.ListedSize(stored, storeTag); ok {
			return size, nil
		}
		return 0, envelope.ErrSize
	}
	obj, meta, err := s.openSealed(r, hv, r.t.Bucket, key)
	if err != nil {
		return 0, err
	}
	defer obj.Close()
	return obj.PlainSize(meta, stored, storeTag)
}

// blockIndex caches opened block indexes of compressed objects, by object
// version and header, as partMaps does for multipart objects. The index is
// read from tail, without a request, when tail (nil: none) holds it.
func (s *Server) blockIndex(rq *readReq, obj *envelope.Object, storeTag, headerValue string, stored int64, tail *storeTail) (*envelope.BlockIndex, error) {
	h := sha256.Sum256([]byte(headerValue))
	key := rq.bucket + "\x00" + rq.key + "\x00" + storeTag + "\x00" + string(h[:])
	if idx, ok := s.indexes.Get(key); ok {
		return idx, nil
	}
	off, n, err := obj.IndexRange(stored)
	if err != nil {
		return nil, s3wire.Damaged(fmt.Errorf("%s/%s: %w", rq.bucket, rq.key, err))
	}
	if tail.covers(off, n) {
		idx, err := obj.OpenIndex(tail.b[off-tail.off:off-tail.off+n], stored)
		if err != nil {
			return nil, s3wire.Damaged(fmt.Errorf("%s/%s: %w", rq.bucket, rq.key, err))
		}
		s.indexes.Add(key, idx)
		return idx, nil
	}
	body, err := s.readStored(rq, storeTag, off, n)
	if err != nil {
		return nil, err
	}
	idx, err := obj.OpenIndex(body, stored)
	if err != nil {
		return nil, s3wire.Damaged(fmt.Errorf("%s/%s: %w", rq.bucket, rq.key, err))
	}
	s.indexes.Add(key, idx)
	return idx, nil
}

// Range reads of compressed objects. The proxy learns that an object is
// compressed from its header, which comes with the first response, and a
// range then needs the block index (at the end of the body) and the
// blocks. What follows keeps that to the fewest store requests the format
// allows without costing uncompressed objects anything (README,
// "Compression", has the counts):
//
//   - a suffix read (getTail) brings the headers, the stored size and the
//     end of the body, where the index is, in one request: it replaces a
//     HEAD for suffix ranges in buckets that may hold compressed objects,
//     and the HEAD and header read after a 416 (the range aligned for an
//     uncompressed object lying past a compressed one's end);
//   - blocks already in that tail, or in the first response, are not
//     fetched again;
//   - the last compressed version read of each object is remembered
//     (warmCompressed), so a later range of it is a single request for its
//     blocks, conditional on the store ETag.

const (
	// indexTailLen is what a suffix read fetches to find the index: the
	// index of the largest object at the default block size (5 GiB in
	// 256 KiB blocks: 4·20480+16 bytes) and some blocks before it.
	indexTailLen = 96 << 10
	// maxTailLen bounds what a suffix read holds in memory.
	maxTailLen = 320 << 10
	// maxFirstSkip bounds what is read and dropped of a first response to
	// reach blocks that lie in it.
	maxFirstSkip = 256 << 10
)

// suffixTailLen is the suffix read for a plaintext suffix range of n
// bytes: enough for the uncompressed ciphertext of the range (every
// segment it touches) or for a compressed object's index, within
// maxTailLen.
func suffixTailLen(n int64) int64 {
	segs := (n+envelope.SegmentSize-1)/envelope.SegmentSize + 1
	return min(max(segs*(envelope.SegmentSize+envelope.TagSize), indexTailLen), maxTailLen)
}

// storeTail is the end of a stored body, read into memory: b holds stored
// bytes [off, off+len(b)).
type storeTail struct {
	off int64
	b   []byte
}

// covers reports whether t holds stored bytes [off, off+n); false for nil.
func (t *storeTail) covers(off, n int64) bool {
	return t != nil && off >= t.off && off+n <= t.off+int64(len(t.b))
}

func (t *storeTail) reader(off, n int64) io.Reader {
	return bytes.NewReader(t.b[off-t.off : off-t.off+n])
}

// getTail asks the store for the last k stored bytes of the object with
// cond (a suffix range needs no size) and reads them into memory. resp is
// the store's response, body consumed: the caller releases it. A 416 (an
// empty stored body) comes back as resp with a nil tail; an error answer
// as an upstreamReply.
func (s *Server) getTail(rq *readReq, cond http.Header, k int64) (*fasthttp.Response, *storeTail, error) {
	out := upstream.NewRequest(http.MethodGet, rq.rawPath, rq.query)
	for name, v := range cond {
		out.Header[name] = v
	}
	out.Header.Set("Range", fmt.Sprintf("bytes=-%d", k))
	resp, err := s.up.Do(out)
	if err != nil {
		return nil, nil, s3wire.Internal(fmt.Errorf("upstream GET: %w", err))
	}
	status := resp.StatusCode()
	switch status {
	case http.StatusRequestedRangeNotSatisfiable:
		return resp, nil, nil
	case http.StatusOK, http.StatusPartialContent:
	default:
		return nil, nil, &upstreamReply{resp}
	}
	_, off, err := storedExtent(resp, status)
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		return nil, nil, s3wire.Internal(err)
	}
	b, err := io.ReadAll(io.LimitReader(upstream.Body(resp), k+1))
	if err == nil && int64(len(b)) > k {
		err = fmt.Errorf("store sent more than the %d bytes asked for", k)
	}
	if err != nil {
		resp.CloseBodyStream()
		fasthttp.ReleaseResponse(resp)
		return nil, nil, s3wire.Internal(fmt.Errorf("suffix read of %s/%s: %w", rq.bucket, rq.key, err))
	}
	return resp, &storeTail{off: off, b: b}, nil
}

// latestCompressed is the last compressed version of an object a range
// read opened: its store ETag, stored and plaintext sizes, the hash of its
// header value and its authenticated block index.
type latestCompressed struct {
	tag          string
	stored, size int64
	header       [sha256.Size]byte
	idx          *envelope.BlockIndex
}

func latestKey(rq *readReq) string {
	return rq.bucket + "\x00" + rq.key + "\x00" + rq.query
}

// rememberCompressed records what a range read of a compressed object
// learnt, for warmCompressed.
func (s *Server) rememberCompressed(rq *readReq, po *plainObject, headerValue string, stored int64, idx *envelope.BlockIndex) {
	s.latest.Add(latestKey(rq), latestCompressed{tag: po.storeTag, stored: stored, size: po.size, header: sha256.Sum256([]byte(headerValue)), idx: idx})
}

// warmCompressed serves a range GET of an object whose last compressed
// version this instance has read (rememberCompressed) with one store
// request: the blocks of the range, If-Match that version's store ETag.
// The response must be that version (ETag, stored size and header value as
// remembered), its header opens as any other and its blocks authenticate
// against the remembered index, so it trusts the store no more than a cold
// read does. ok is false, and nothing is served, when the object is not
// remembered, the client sent conditions of its own, or the store answers
// anything else (the object changed): the caller then reads it as usual.
func (s *Server) warmCompressed(r *request, rq *readReq) (po *plainObject, ok bool, err error) {
	if rq.head || rq.br == nil || rq.partNumber > 0 || len(rq.cond) > 0 || s.latest.Len() == 0 {
		return nil, false, nil
	}
	key := latestKey(rq)
	e, found := s.latest.Get(key)
	if !found {
		return nil, false, nil
	}
	off, n, valid := rq.br.Resolve(e.size)
	if !valid || n == 0 {
		return nil, false, nil
	}
	cOff, cLen, err := e.idx.CipherRange(off, n)
	if err != nil {
		return nil, false, nil
	}
	out := upstream.NewRequest(http.MethodGet, rq.rawPath, rq.query)
	out.Header.Set("If-Match", e.tag)
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", cOff, cOff+cLen-1))
	resp, err := s.up.Do(out)
	if err != nil {
		return nil, false, nil
	}
	release := func() { resp.CloseBodyStream(); fasthttp.ReleaseResponse(resp) }
	headerValue := string(resp.Header.Peek(s3wire.SealHeader))
	first, total, crErr := s3wire.ParseContentRange(string(resp.Header.Peek("Content-Range")))
	if resp.StatusCode() != http.StatusPartialContent || crErr != nil || first != cOff || total != e.stored ||
		string(resp.Header.Peek("ETag")) != e.tag || sha256.Sum256([]byte(headerValue)) != e.header {
		release()
		s.latest.Remove(key)
		return nil, false, nil
	}
	po = &plainObject{resp: resp, storeTag: e.tag, off: off, n: n, ranged: true}
	po.closers = append(po.closers, release)
	obj, meta, err := s.openSealed(r, headerValue, rq.bucket, rq.key)
	if err != nil {
		po.Close()
		return nil, true, err
	}
	po.closers = append(po.closers, obj.Close)
	po.meta, po.version, po.keyID = meta, obj.Version(), obj.KeyInfo().KeyID
	if po.size, err = obj.PlainSize(meta, e.stored, e.tag); err != nil || po.size != e.size || obj.Compression() == nil {
		po.Close()
		return nil, true, s3wire.Damaged(fmt.Errorf("%s/%s: remembered compressed version no longer opens as one (%v)", rq.bucket, rq.key, err))
	}
	po.body = obj.DecryptCompressedReader(upstream.Body(resp), e.idx, off, n)
	return po, true, nil
}
