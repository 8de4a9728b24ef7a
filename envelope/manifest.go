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
// reads them one after the other. The map it returns describes what the
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
	if parts == 1 || first.PartNumber() != 1 || last < 0 || last > p1 {
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
				if err != nil || ph.PartNumber() != i+1 || ph.PlainLen() != want {
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
		plainStart: make([]int64, n), storedStart: make([]int64, n), versions: make([]byte, n), keyIDs: make([]string, n)}
	var plain, st int64
	for i, ph := range hdrs {
		if i > 0 && ph.PartNumber() <= pm.nums[i-1] {
			return nil, fmt.Errorf("%w: part number %d after %d", ErrManifest, ph.PartNumber(), pm.nums[i-1])
		}
		pm.nums[i], pm.lens[i], pm.digests[i], pm.versions[i] = ph.PartNumber(), ph.PlainLen(), ph.Digest(), ph.version
		pm.keyIDs[i] = ph.keyID
		pm.plainStart[i], pm.storedStart[i] = plain, st
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
// parts are bound to upload (nil for version 1 parts). It is what the
// writer seals into the object header when the upload completes; pm counts
// as verified from then on.
func (pm *PartMap) Manifest(upload []byte) (*Manifest, error) {
	if err := pm.checkVersions(upload); err != nil {
		return nil, err
	}
	pm.verified = true
	return &Manifest{Parts: len(pm.nums), Size: pm.Size(), Digest: pm.manifestDigest(upload)}, nil
}

// checkVersions refuses a downgrade: parts bound to an upload are version
// 2 parts, and an object without an upload identity has version 1 parts.
func (pm *PartMap) checkVersions(upload []byte) error {
	for i, v := range pm.versions {
		if (v >= 2) != (len(upload) > 0) {
			return fmt.Errorf("%w: part %d is a version %d part", ErrManifest, pm.nums[i], v)
		}
	}
	return nil
}

// Verify checks pm against the object's header version and sealed
// metadata. A version 2 object needs a manifest (ErrIncomplete without
// one) listing exactly these parts, sizes and headers, and its parts must be
// version 2 parts if it has an upload identity, version 1 parts otherwise.
// A version 1 object has no manifest: its map is only checked to be
// consistent and made of version 1 parts, as version 1 allows. Only a
// verified map reads (MultipartReader).
func (pm *PartMap) Verify(version int, m *Meta) error {
	upload := m.Upload
	if version < 2 {
		upload = nil // version 1 has no upload identity
	}
	if err := pm.checkVersions(upload); err != nil {
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

// FetchRange maps plaintext [off, off+n) (n ≥ 1) to the stored bytes to
// read. A range that ends in a part's last segment extends to the end of
// that part, so that its padding is checked.
func (pm *PartMap) FetchRange(off, n int64) (Fetch, error) {
	if n < 1 || off < 0 || off >= pm.Size() || n > pm.Size()-off { // not off+n: it may overflow
		return Fetch{}, fmt.Errorf("%w: [%d, %d+%d) of %d bytes", ErrRange, off, off, n, pm.Size())
	}
	first, last := pm.find(off), pm.find(off+n-1)
	inOff := off - pm.plainStart[first]
	cOff, _ := PartStoredRange(pm.lens[first], inOff, min(n, pm.lens[first]-inOff))
	eOff, eLen := PartStoredRange(pm.lens[last], 0, off+n-pm.plainStart[last])
	f := Fetch{From: pm.storedStart[first] + cOff, To: pm.storedStart[last] + eOff + eLen, FirstOffset: pm.storedStart[first]}
	if cOff == PartHeaderSize {
		f.From, f.HeaderInline = pm.storedStart[first], true
	}
	return f, nil
}
