package envelope

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"sync"
)

// NewUploadID draws a fresh upload identity for a multipart upload
// (UploadIDSize random bytes); see Config.NewUploadID.
func NewUploadID() ([]byte, error) { return Config{}.NewUploadID() }

// NewUploadID draws a fresh upload identity from c.Rand.
func (c Config) NewUploadID() ([]byte, error) {
	u := make([]byte, UploadIDSize)
	if _, err := io.ReadFull(c.rand(), u); err != nil {
		return nil, fmt.Errorf("envelope: random source: %w", err)
	}
	return u, nil
}

// PartMap is where each part of a multipart object lies, read from its part
// headers: part numbers, plaintext sizes, stored offsets and the digest of
// each header. Once Verify has checked it against the object's manifest it
// describes exactly the parts the object was completed with, and readers
// check every part header they read against it before using the part.
type PartMap struct {
	nums        []int
	lens        []int64
	digests     [][32]byte
	plainStart  []int64
	storedStart []int64
	versions    []byte
	keyIDs      []string
	verified    bool

	// Compressed parts (FORMAT.md 12.2.3): each part's stored size, and a
	// compressed part's parameters and body length (nil, 0 otherwise).
	storedLens []int64
	comps      []*Compression
	bodyLens   []int64
}

// HeaderFetcher returns the part header stored at offset off of the object
// (PartHeaderSize bytes, parsed). ReadPartMap may call it from several
// goroutines at once.
type HeaderFetcher func(off int64) (*PartHeader, error)

// mapFetchers bounds the header fetches ReadPartMap runs at once.
const mapFetchers = 8

// ReadPartMap reads the part headers of a multipart object of parts parts
// (the N of its ETag) and stored bytes. It reads the first header, and if
// the parts look equal-sized (the usual case: every part as large as the
// first but the last) fetches the others at the offsets that implies, in
// parallel; otherwise, or if a header is not where the guess put it, it
// reads them one after the other. A compressed part's stored size is in
// its header only, so once one is met (first, or where the guess expected
// an uncompressed part) the headers are read one after the other. The map it returns describes what the
// store holds: Verify checks it against the manifest.
func ReadPartMap(parts int, stored int64, fetch HeaderFetcher) (*PartMap, error) {
	if parts < 1 || parts > MaxPartNumber {
		return nil, fmt.Errorf("%w: %d parts", ErrSize, parts)
	}
	first, err := fetch(0)
	if err != nil {
		return nil, err
	}
	if pm, ok := guessMap(first, parts, stored, fetch); ok {
		return pm, nil
	}
	hdrs := []*PartHeader{first}
	off := first.CiphertextSize()
	for len(hdrs) < parts {
		if off >= stored {
			return nil, fmt.Errorf("%w: %d parts end at byte %d of %d", ErrTruncated, len(hdrs), off, stored)
		}
		ph, err := fetch(off)
		if err != nil {
			return nil, err
		}
		hdrs = append(hdrs, ph)
		off += ph.CiphertextSize()
	}
	return newPartMap(hdrs, stored)
}

// guessMap tries the equal-sized layout implied by the first header.
func guessMap(first *PartHeader, parts int, stored int64, fetch HeaderFetcher) (*PartMap, bool) {
	p1 := first.PlainLen()
	last := stored - int64(parts)*PartOverhead - int64(parts-1)*p1
	if parts == 1 || first.PartNumber() != 1 || last < 0 || last > p1 || first.comp != nil {
		return nil, false
	}
	hdrs := make([]*PartHeader, parts)
	hdrs[0] = first
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed bool
		next   = 1
	)
	for range min(mapFetchers, parts-1) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := failed
				mu.Unlock()
				if stop || i >= parts {
					return
				}
				want := p1
				if i == parts-1 {
					want = last
				}
				ph, err := fetch(int64(i) * (p1 + PartOverhead))
				if err != nil || ph.PartNumber() != i+1 || ph.PlainLen() != want || ph.comp != nil {
					mu.Lock()
					failed = true
					mu.Unlock()
					return
				}
				hdrs[i] = ph
			}
		})
	}
	wg.Wait()
	if failed {
		return nil, false
	}
	pm, err := newPartMap(hdrs, stored)
	return pm, err == nil
}

// PartMapOf is the map of an object made of the parts whose headers are
// hdrs, in stored order: what a writer that knows its parts' headers before
// it uploads them (a migration, a rewrap) builds the manifest from.
func PartMapOf(hdrs []*PartHeader) (*PartMap, error) {
	if len(hdrs) < 1 || len(hdrs) > MaxPartNumber {
		return nil, fmt.Errorf("%w: %d parts", ErrSize, len(hdrs))
	}
	var stored int64
	for _, ph := range hdrs {
		stored += ph.CiphertextSize()
	}
	return newPartMap(hdrs, stored)
}

func newPartMap(hdrs []*PartHeader, stored int64) (*PartMap, error) {
	n := len(hdrs)
	pm := &PartMap{nums: make([]int, n), lens: make([]int64, n), digests: make([][32]byte, n),
		plainStart: make([]int64, n), storedStart: make([]int64, n), versions: make([]byte, n), keyIDs: make([]string, n),
		storedLens: make([]int64, n), comps: make([]*Compression, n), bodyLens: make([]int64, n)}
	var plain, st int64
	for i, ph := range hdrs {
		if i > 0 && ph.PartNumber() <= pm.nums[i-1] {
			return nil, fmt.Errorf("%w: part number %d after %d", ErrManifest, ph.PartNumber(), pm.nums[i-1])
		}
		pm.nums[i], pm.lens[i], pm.digests[i], pm.versions[i] = ph.PartNumber(), ph.PlainLen(), ph.Digest(), ph.version
		pm.keyIDs[i] = ph.keyID
		pm.plainStart[i], pm.storedStart[i] = plain, st
		pm.storedLens[i], pm.comps[i], pm.bodyLens[i] = ph.CiphertextSize(), ph.Compression(), ph.bodyLen
		plain += ph.PlainLen()
		st += ph.CiphertextSize()
	}
	if st != stored {
		return nil, fmt.Errorf("%w: parts add up to %d stored bytes, object has %d", ErrManifest, st, stored)
	}
	return pm, nil
}

// manifestDigest is SHA-256 over the upload identity and every part's
// number, plaintext size and header digest (FORMAT.md "Manifest"):
//
//	"s3seal/2 manifest" || uint8 len(upload) || upload || uint32 N ||
//	N × (uint32 part number || uint64 plaintext size || SHA-256(part header))
func (pm *PartMap) manifestDigest(upload []byte) []byte {
	h := sha256.New()
	b := make([]byte, 0, 64)
	b = append(b, versionPrefix(2)+" manifest"...)
	b = append(b, byte(len(upload)))
	b = append(b, upload...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(pm.nums)))
	h.Write(b)
	for i := range pm.nums {
		b = binary.BigEndian.AppendUint32(b[:0], uint32(pm.nums[i]))
		b = binary.BigEndian.AppendUint64(b, uint64(pm.lens[i]))
		b = append(b, pm.digests[i][:]...)
		h.Write(b)
	}
	return h.Sum(nil)
}

// Manifest returns the manifest of the parts in pm, for an object whose
// parts are bound to upload (nil for version 1 parts) and whose header has
// no FlagCompressed (a compressed part is refused); see ManifestFlags.
func (pm *PartMap) Manifest(upload []byte) (*Manifest, error) {
	return pm.ManifestFlags(upload, 0)
}

// ManifestFlags returns the manifest of the parts in pm, for an object
// whose parts are bound to upload (nil for version 1 parts) and whose
// object header has the flags objFlags: compressed parts only under a
// header with FlagCompressed (ErrManifest otherwise). It is what the
// writer seals into the object header when the upload completes; pm counts
// as verified from then on.
func (pm *PartMap) ManifestFlags(upload []byte, objFlags Flags) (*Manifest, error) {
	if err := pm.checkVersions(upload, objFlags); err != nil {
		return nil, err
	}
	pm.verified = true
	return &Manifest{Parts: len(pm.nums), Size: pm.Size(), Digest: pm.manifestDigest(upload)}, nil
}

// checkVersions refuses a downgrade: parts bound to an upload are version
// 2 (or 3) parts, and an object without an upload identity has version 1
// parts; a compressed part belongs only to an object whose header has
// FlagCompressed, so that clearing the flag (or splicing a compressed part
// into an upload that did not ask for compression) is refused.
func (pm *PartMap) checkVersions(upload []byte, objFlags Flags) error {
	for i, v := range pm.versions {
		if (v >= 2) != (len(upload) > 0) {
			return fmt.Errorf("%w: part %d is a version %d part", ErrManifest, pm.nums[i], v)
		}
		if pm.comps[i] != nil && objFlags&FlagCompressed == 0 {
			return fmt.Errorf("%w: part %d is compressed, the object header does not allow it", ErrManifest, pm.nums[i])
		}
	}
	return nil
}

// Verify checks pm against the object's header version and sealed
// metadata, for an object header without FlagCompressed; see VerifyFlags.
func (pm *PartMap) Verify(version int, m *Meta) error {
	return pm.VerifyFlags(version, 0, m)
}

// VerifyFlags checks pm against the object's header version and flags
// and its sealed metadata. A version 2 or 3 object needs a manifest
// (ErrIncomplete without one) listing exactly these parts, sizes and
// headers, and its parts must be version 2 or 3 parts if it has an upload
// identity, version 1 parts otherwise; compressed parts only if the
// object header has FlagCompressed. A version 1 object has no manifest: its
// map is only checked to be consistent and made of version 1 parts, as
// version 1 allows. Only a verified map reads (MultipartReader).
func (pm *PartMap) VerifyFlags(version int, objFlags Flags, m *Meta) error {
	upload := m.Upload
	if version < 2 {
		upload = nil // version 1 has no upload identity
	}
	if err := pm.checkVersions(upload, objFlags); err != nil {
		return err
	}
	if version >= 2 {
		mf := m.Manifest
		if mf == nil {
			return ErrIncomplete
		}
		if mf.Parts != len(pm.nums) || mf.Size != pm.Size() ||
			subtle.ConstantTimeCompare(mf.Digest, pm.manifestDigest(upload)) != 1 {
			return ErrManifest
		}
	}
	pm.verified = true
	return nil
}

// Verified reports whether pm was checked by Verify, or made the manifest.
func (pm *PartMap) Verified() bool { return pm.verified }

// Parts returns the number of parts.
func (pm *PartMap) Parts() int { return len(pm.nums) }

// Size returns the plaintext size of the object.
func (pm *PartMap) Size() int64 {
	n := len(pm.nums)
	return pm.plainStart[n-1] + pm.lens[n-1]
}

// Part returns the part number, plaintext offset and size, and stored
// offset of the i-th part (0-based).
func (pm *PartMap) Part(i int) (num int, plainStart, plainLen, storedStart int64) {
	return pm.nums[i], pm.plainStart[i], pm.lens[i], pm.storedStart[i]
}

// StoredLen returns the stored size of the i-th part (0-based), header
// and padding included.
func (pm *PartMap) StoredLen(i int) int64 { return pm.storedLens[i] }

// Compression returns the algorithm and block size of the i-th part
// (0-based) if it is compressed, nil otherwise.
func (pm *PartMap) Compression(i int) *Compression {
	if pm.comps[i] == nil {
		return nil
	}
	c := *pm.comps[i]
	return &c
}

// Compressed reports whether any part is compressed.
func (pm *PartMap) Compressed() bool {
	for _, c := range pm.comps {
		if c != nil {
			return true
		}
	}
	return false
}

// KeyID returns the KMS key id named in the i-th part's header (0-based):
// a copy to a path under another key re-wraps the parts it names. Once
// Verify has passed it is authenticated, as the manifest covers every
// header byte.
func (pm *PartMap) KeyID(i int) string { return pm.keyIDs[i] }

// Index returns the index of the part numbered num, or -1.
func (pm *PartMap) Index(num int) int {
	i := sort.SearchInts(pm.nums, num)
	if i < len(pm.nums) && pm.nums[i] == num {
		return i
	}
	return -1
}

// find returns the index of the part holding plaintext offset off.
func (pm *PartMap) find(off int64) int {
	return sort.Search(len(pm.lens), func(i int) bool { return pm.plainStart[i]+pm.lens[i] > off })
}

// Check compares a part header read from the store with the i-th part of
// the map: number, size, version and header digest.
func (pm *PartMap) Check(i int, ph *PartHeader) error {
	if i < 0 || i >= len(pm.nums) || ph.PartNumber() != pm.nums[i] || ph.PlainLen() != pm.lens[i] || ph.version != pm.versions[i] {
		return fmt.Errorf("%w: part header %d (%d bytes) is not part %d of the object", ErrManifest, ph.PartNumber(), ph.PlainLen(), i+1)
	}
	d := ph.Digest()
	if subtle.ConstantTimeCompare(d[:], pm.digests[i][:]) != 1 {
		return fmt.Errorf("%w: header of part %d differs", ErrManifest, ph.PartNumber())
	}
	return nil
}

// Fetch is the stored byte range that holds plaintext [off, off+n) of the
// object, for MultipartReader: [From, To). HeaderInline is true when the
// range starts with the first part's header (the plaintext starts in that
// part's first segment); otherwise the caller reads that header separately
// (FirstOffset is its stored offset) and passes it to MultipartReader.
type Fetch struct {
	From, To     int64
	HeaderInline bool
	FirstOffset  int64
}

// PartIndexes holds the opened block indexes of compressed parts, by the
// part's position in the map (0-based), for a range that starts or ends
// inside a compressed part (NeedIndexes).
type PartIndexes map[int]*BlockIndex

// NeedIndexes returns the positions (0-based) of the compressed parts
// whose block index a read of plaintext [off, off+n) needs: the part it
// starts in and the part it ends in, unless the range covers that part
// whole. For each, the caller reads the part's header (at its stored
// offset, Part), opens the part, reads its sealed index
// (IndexRange) and opens it (Part.OpenIndex), or takes it from a cache.
func (pm *PartMap) NeedIndexes(off, n int64) ([]int, error) {
	if n < 1 || off < 0 || off >= pm.Size() || n > pm.Size()-off {
		return nil, fmt.Errorf("%w: [%d, %d+%d) of %d bytes", ErrRange, off, off, n, pm.Size())
	}
	var need []int
	for _, i := range []int{pm.find(off), pm.find(off + n - 1)} {
		if pm.comps[i] == nil || len(need) > 0 && need[0] == i {
			continue
		}
		a := max(off-pm.plainStart[i], 0)
		e := min(off+n-pm.plainStart[i], pm.lens[i])
		if a != 0 || e != pm.lens[i] {
			need = append(need, i)
		}
	}
	return need, nil
}

// IndexRange returns the stored range of the i-th part's sealed block
// index (0-based; a compressed part), relative to the object's start.
func (pm *PartMap) IndexRange(i int) (off, n int64, err error) {
	if i < 0 || i >= len(pm.nums) || pm.comps[i] == nil {
		return 0, 0, fmt.Errorf("%w: part %d is not compressed", ErrLayout, i)
	}
	n = blockHeaderSize*pm.comps[i].blocks(pm.lens[i]) + TagSize
	return pm.storedStart[i] + PartHeaderSize + pm.bodyLens[i] - n, n, nil
}

// partRange maps plaintext [a, a+k) (k ≥ 1) of the i-th part to the stored
// range to fetch, relative to the part's start (header included).
func (pm *PartMap) partRange(i int, a, k int64, ix PartIndexes) (int64, int64, error) {
	if pm.comps[i] == nil {
		cOff, cLen := PartStoredRange(pm.lens[i], a, k)
		return cOff, cLen, nil
	}
	if a == 0 && k == pm.lens[i] {
		return PartHeaderSize, pm.storedLens[i] - PartHeaderSize, nil
	}
	idx := ix[i]
	if idx == nil || idx.header != pm.digests[i] {
		return 0, 0, fmt.Errorf("%w: a range of compressed part %d needs its block index", ErrRange, pm.nums[i])
	}
	cOff, cLen, err := idx.CipherRange(a, k)
	if err != nil {
		return 0, 0, err
	}
	if cOff+cLen == idx.starts[len(idx.hdrs)] {
		cLen = pm.storedLens[i] - PartHeaderSize - cOff // index and padding
	}
	return PartHeaderSize + cOff, cLen, nil
}

// FetchRange maps plaintext [off, off+n) (n ≥ 1) to the stored bytes to
// read, for a map whose range needs no block index (NeedIndexes); see
// FetchRangeIndexed.
func (pm *PartMap) FetchRange(off, n int64) (Fetch, error) {
	return pm.FetchRangeIndexed(off, n, nil)
}

// FetchRangeIndexed maps plaintext [off, off+n) (n ≥ 1) to the stored
// bytes to read, with the block indexes of the compressed parts the range
// starts or ends inside (NeedIndexes). A range that ends in a part's last
// segment or block extends to the end of that part, so that its padding
// (and a compressed part's index) is checked.
func (pm *PartMap) FetchRangeIndexed(off, n int64, ix PartIndexes) (Fetch, error) {
	if n < 1 || off < 0 || off >= pm.Size() || n > pm.Size()-off { // not off+n: it may overflow
		return Fetch{}, fmt.Errorf("%w: [%d, %d+%d) of %d bytes", ErrRange, off, off, n, pm.Size())
	}
	first, last := pm.find(off), pm.find(off+n-1)
	inOff := off - pm.plainStart[first]
	cOff, _, err := pm.partRange(first, inOff, min(n, pm.lens[first]-inOff), ix)
	if err != nil {
		return Fetch{}, err
	}
	eOff, eLen, err := pm.partRange(last, 0, off+n-pm.plainStart[last], ix)
	if err != nil {
		return Fetch{}, err
	}
	f := Fetch{From: pm.storedStart[first] + cOff, To: pm.storedStart[last] + eOff + eLen, FirstOffset: pm.storedStart[first]}
	if cOff == PartHeaderSize {
		f.From, f.HeaderInline = pm.storedStart[first], true
	}
	return f, nil
}
