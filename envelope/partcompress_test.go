package envelope

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"testing"
)

// Compressed parts (FORMAT.md 12.2.3): round trips, the 5 MiB padding
// rule, multipart objects that mix compressed and uncompressed parts,
// every range, tampering, re-wrapping.

// sealCPart seals plain as part num of upload (inst: which instance's data
// key) and returns the stored part: compressed with comp, or a version 2
// part of segments when comp is nil (what the adaptive check stores raw).
func sealCPart(t testing.TB, inst int, bucket, key string, upload []byte, num int, plain []byte, comp *Compression) []byte {
	t.Helper()
	if comp == nil {
		p, err := NewPart(instDEK[inst], instKI[inst], bucket, key, upload, num, int64(len(plain)))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		b, err := io.ReadAll(p.EncryptReader(bytes.NewReader(plain)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p, err := Config{}.NewCompressedPart(instDEK[inst], instKI[inst], bucket, key, upload, num, int64(len(plain)), *comp)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Header() != nil {
		t.Fatal("a compressed part has a header before its body is sealed")
	}
	var body bytes.Buffer
	ph, err := p.EncryptCompressed(bytes.NewReader(plain), &body)
	if err != nil {
		t.Fatal(err)
	}
	if ph != p.Header() || ph.BodyLen() != int64(body.Len()) || ph.Version() != 3 || ph.Flags() != FlagCompressed ||
		*ph.Compression() != *comp || ph.SegmentSize() != 0 {
		t.Fatalf("header: body %d (%d written), v%d, flags %#x, %+v", ph.BodyLen(), body.Len(), ph.Version(), ph.Flags(), ph.Compression())
	}
	return slices.Concat(ph.Bytes(), body.Bytes(), make([]byte, ph.PadSize()))
}

// cpart is one part of a test upload: its number, plaintext and
// compression (nil: a version 2 part of segments).
type cpart struct {
	num   int
	plain []byte
	comp  *Compression
}

// newCompressedUpload seals the parts of an upload to a bucket with
// compression on, by alternating instances.
func newCompressedUpload(t testing.TB, bucket, key string, parts []cpart) *mpUpload {
	t.Helper()
	u := &mpUpload{bucket: bucket, key: key, version: 3, upload: must(NewUploadID())}
	for i, p := range parts {
		u.nums = append(u.nums, p.num)
		u.plains = append(u.plains, p.plain)
		u.parts = append(u.parts, sealCPart(t, i%2, bucket, key, u.upload, p.num, p.plain, p.comp))
	}
	return u
}

// finalizeCompressed is CompleteMultipartUpload for an upload whose object
// header has FlagCompressed: the finalized Meta, and the header value.
func finalizeCompressed(t testing.TB, u *mpUpload) (*Meta, string) {
	t.Helper()
	body := u.body()
	pm, err := ReadPartMap(len(u.parts), int64(len(body)), bodyFetcher(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pm.Manifest(u.upload); pm.Compressed() && !errors.Is(err, ErrManifest) {
		t.Fatalf("manifest of compressed parts for a header without the flag: %v", err)
	}
	mf, err := pm.ManifestFlags(u.upload, FlagCompressed)
	if err != nil {
		t.Fatal(err)
	}
	meta := &Meta{Size: -1, Upload: u.upload, Manifest: mf}
	o, err := Config{Flags: FlagCompressed}.NewObject(instDEK[0], instKI[0], u.bucket, u.key, LayoutMultipart, meta.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	return meta, o.HeaderValue()
}

// readCompressedObject reads a multipart object as a GET does: the header
// opened, its size from PlainSize, the part map read and verified with
// the header's flags, then [off, off+n).
func readCompressedObject(t testing.TB, u *mpUpload, value string, body []byte, off, n int64) ([]byte, error) {
	t.Helper()
	h, err := ParseHeader(value)
	if err != nil {
		return nil, err
	}
	o, err := Open(h, instDEK[0], u.bucket, u.key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	meta, err := DecodeMeta(o.Meta())
	if err != nil {
		return nil, err
	}
	size, err := o.PlainSize(meta, int64(len(body)), etagN(len(u.parts)))
	if err != nil {
		return nil, err
	}
	pm, err := ReadPartMap(len(u.parts), int64(len(body)), bodyFetcher(body))
	if err != nil {
		return nil, err
	}
	if err := pm.VerifyFlags(h.Version(), h.Flags(), meta); err != nil {
		return nil, err
	}
	if pm.Size() != size {
		t.Fatalf("verified map of %d bytes, PlainSize %d", pm.Size(), size)
	}
	if n < 0 {
		n = size - off
	}
	return readMultipart(body, pm, off, n, u.open(), 1<<16)
}

// TestCompressedPartRoundTrip: single compressed parts of every size
// class, both algorithms, and the 5 MiB rule: a part that would be stored
// in 5 MiB or more uncompressed is padded to at least 5 MiB, a smaller one
// (only a last part can be that small) is not; the whole part decrypts
// through Part.DecryptReader, and its header parses back to the same
// fields.
func TestCompressedPartRoundTrip(t *testing.T) {
	const mib = 1 << 20
	upload := must(NewUploadID())
	small := MinBlockSize
	cases := []struct {
		name  string
		plain []byte
		comp  Compression
		pad   bool // padded to exactly MinStoredPartSize
	}{
		{"empty", nil, Compression{AlgS2, small}, false},
		{"one byte", []byte("x"), Compression{AlgZstd, small}, false},
		{"block-1", compressible(1, small-1), Compression{AlgS2, small}, false},
		{"block", compressible(2, small), Compression{AlgZstd, small}, false},
		{"block+1", compressible(3, small+1), Compression{AlgS2, small}, false},
		{"mixed", mixed(4, 5*small+7, small), Compression{AlgZstd, small}, false},
		{"random", randBytes(5, 3*small), Compression{AlgS2, small}, false},
		{"just under the rule", compressible(6, 5*mib-int(PartOverhead)-1), Compression{AlgS2, DefaultBlockSize}, false},
		{"at the rule", compressible(7, 5*mib-int(PartOverhead)), Compression{AlgS2, DefaultBlockSize}, true},
		{"6 MiB", compressible(8, 6*mib), Compression{AlgZstd, MaxBlockSize}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stored := sealCPart(t, 0, "b", "k", upload, 7, c.plain, &c.comp)
			ph, err := ParsePartHeader(stored)
			if err != nil {
				t.Fatal(err)
			}
			P := int64(len(c.plain))
			if ph.PlainLen() != P || *ph.Compression() != c.comp || ph.CiphertextSize() != int64(len(stored)) || ph.PartNumber() != 7 {
				t.Fatalf("parsed %d bytes, %+v, stored %d of %d", ph.PlainLen(), ph.Compression(), ph.CiphertextSize(), len(stored))
			}
			if lo, hi := c.comp.CompressedSizeBounds(P); ph.BodyLen() < lo || ph.BodyLen() > hi {
				t.Fatalf("B = %d outside [%d, %d]", ph.BodyLen(), lo, hi)
			}
			if c.pad != (ph.PadSize() > 0) || c.pad && int64(len(stored)) != MinStoredPartSize {
				t.Fatalf("pad %d, stored %d", ph.PadSize(), len(stored))
			}
			if P+PartOverhead >= MinStoredPartSize && int64(len(stored)) < MinStoredPartSize {
				t.Fatalf("a part of %d bytes stored in %d < 5 MiB", P, len(stored))
			}
			if want := PartHeaderSize + ph.BodyLen() + ph.PadSize(); int64(len(stored)) != want {
				t.Fatalf("stored %d, want %d", len(stored), want)
			}
			// Raw bytes at offsets 6 and 7, and B after the commitment.
			if stored[6] != byte(bitsLen(c.comp.BlockSize)) || stored[7] != algByte(c.comp.Algorithm) {
				t.Fatalf("offsets 6, 7: % x", stored[6:8])
			}
			p, err := OpenPart(ph, instDEK[0], "b", "k", upload)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for _, chunk := range []int{1 << 20, 4096, 1} {
				if chunk == 1 && P > 1<<20 {
					continue
				}
				src := bytes.NewReader(stored[PartHeaderSize:])
				got, err := readAllBuf(p.DecryptReader(src, 0, P), chunk)
				if err != nil || !bytes.Equal(got, c.plain) || src.Len() != 0 {
					t.Fatalf("whole part (chunk %d): %v, %d bytes left", chunk, err, src.Len())
				}
			}
			// A range needs the part's index.
			if P > 1 {
				if _, err := io.ReadAll(p.DecryptReader(bytes.NewReader(stored[PartHeaderSize:]), 1, 1)); !errors.Is(err, ErrRange) {
					t.Fatalf("range without the index: %v", err)
				}
				if _, _, err := CompressedPartRange(ph, nil, 1, 1); !errors.Is(err, ErrRange) {
					t.Fatalf("CompressedPartRange without the index: %v", err)
				}
			}
			// Ranges of the part alone through its index: the first and
			// last byte, a middle stretch, the tail (index and padding read).
			if P > 0 {
				ioff, in, err := ph.IndexRange()
				if err != nil {
					t.Fatal(err)
				}
				idx, err := p.OpenIndex(stored[ioff : ioff+in])
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range [][2]int64{{0, 1}, {P - 1, 1}, {P / 3, max(1, P/3)}, {P / 2, P - P/2}, {0, P}} {
					cOff, cLen, err := CompressedPartRange(ph, idx, r[0], r[1])
					if err != nil {
						t.Fatal(err)
					}
					src := bytes.NewReader(stored[cOff : cOff+cLen])
					got, err := readAllBuf(p.DecryptCompressedReader(src, idx, r[0], r[1]), 1<<16)
					if err != nil || !bytes.Equal(got, c.plain[r[0]:r[0]+r[1]]) || src.Len() != 0 {
						t.Fatalf("range [%d, +%d): %v, %d bytes left", r[0], r[1], err, src.Len())
					}
					if r[0]+r[1] == P && cOff+cLen != int64(len(stored)) {
						t.Fatalf("range to the end fetches to %d of %d", cOff+cLen, len(stored))
					}
				}
			}
			t.Logf("%d plaintext bytes stored in %d (body %d, pad %d)", P, len(stored), ph.BodyLen(), ph.PadSize())
		})
	}
}

func bitsLen(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

// TestCompressedPartRefusals: parameters, the wrong calls, and a part
// header that only a compressed part may have.
func TestCompressedPartRefusals(t *testing.T) {
	upload := must(NewUploadID())
	for _, c := range []Compression{{"gzip", MinBlockSize}, {AlgS2, 1000}, {AlgS2, MaxBlockSize * 2}, {AlgZstd, MinBlockSize / 2}} {
		if _, err := (Config{}).NewCompressedPart(instDEK[0], instKI[0], "b", "k", upload, 1, 10, c); !errors.Is(err, ErrFormat) {
			t.Fatalf("%+v: %v", c, err)
		}
	}
	comp := Compression{AlgS2, MinBlockSize}
	if _, err := (Config{}).NewCompressedPart(instDEK[0], instKI[0], "b", "k", nil, 1, 10, comp); !errors.Is(err, ErrFormat) {
		t.Fatalf("no upload identity: %v", err)
	}
	if _, err := (Config{}).NewCompressedPart(instDEK[0], instKI[0], "b", "k", upload, 1, MaxPartSize+1, comp); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	p, err := Config{}.NewCompressedPart(instDEK[0], instKI[0], "b", "k", upload, 1, 10, comp)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.PartNumber() != 1 || p.PlainLen() != 10 || p.CiphertextSize() != -1 {
		t.Fatalf("unsealed part: %d, %d, %d", p.PartNumber(), p.PlainLen(), p.CiphertextSize())
	}
	if _, err := p.CompressedHeader(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("header before the body: %v", err)
	}
	if _, err := io.ReadAll(p.EncryptReader(bytes.NewReader(make([]byte, 10)))); !errors.Is(err, ErrLayout) {
		t.Fatalf("EncryptReader of a compressed part: %v", err)
	}
	if _, err := p.EncryptCompressed(bytes.NewReader(make([]byte, 11)), io.Discard); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("long source: %v", err)
	}
	if _, err := p.EncryptCompressed(bytes.NewReader(make([]byte, 10)), io.Discard); !errors.Is(err, ErrReused) {
		t.Fatalf("second encryption: %v", err)
	}
	if _, err := (Config{}).ResealPart(p, instDEK[1], instKI[1], "b", "k"); err == nil {
		t.Fatal("resealed a part that has no header")
	}
	q, err := NewPart(instDEK[0], instKI[0], "b", "k", upload, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.EncryptCompressed(bytes.NewReader(make([]byte, 10)), io.Discard); !errors.Is(err, ErrLayout) {
		t.Fatalf("EncryptCompressed of a part of segments: %v", err)
	}
	if _, _, err := q.Header().IndexRange(); !errors.Is(err, ErrLayout) {
		t.Fatalf("IndexRange of a part of segments: %v", err)
	}
	// A version 3 part of segments with an algorithm byte, or a compressed
	// one with a block size or algorithm out of range, does not parse.
	stored := sealCPart(t, 0, "b", "k", upload, 1, compressible(1, 1000), &comp)
	for _, mod := range []func(b []byte){
		func(b []byte) { b[7] = 3 },
		func(b []byte) { b[7] = 0 },
		func(b []byte) { b[6] = 15 },
		func(b []byte) { b[6] = 23 },
		func(b []byte) { b[6] = 255 },
		func(b []byte) { b[5] = 0 }, // the flag cleared: offset 7 must then be 0, and 6 the segment size
	} {
		b := slices.Clone(stored[:PartHeaderSize])
		mod(b)
		if _, err := ParsePartHeader(b); !errors.Is(err, ErrFormat) {
			t.Fatalf("modified header % x parsed: %v", b[4:8], err)
		}
	}
	// A multipart object header with the flag carries no z, and cannot be
	// resealed with one.
	o, err := Config{Flags: FlagCompressed}.NewObject(instDEK[0], instKI[0], "b", "k", LayoutMultipart, (&Meta{Size: -1, Upload: upload}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.Reseal(instDEK[0], instKI[0], "b", "k", (&Meta{Size: -1, Compression: &comp}).Encode()); !errors.Is(err, ErrFormat) {
		t.Fatalf("reseal with z: %v", err)
	}
}

// compressedLayout is a multipart object of many shapes, as a bucket with
// compression on gets it: compressed parts of several blocks (mixed raw
// and compressed blocks), a version 2 part of segments (stored raw by the
// adaptive check) in between, an empty compressed part in the middle, a
// part of exactly one block, both algorithms, sparse part numbers and an
// empty compressed last part.
func compressedLayout(t testing.TB) (*mpUpload, []cpart) {
	t.Helper()
	b := MinBlockSize
	s2 := &Compression{AlgS2, b}
	zs := &Compression{AlgZstd, b}
	parts := []cpart{
		{1, mixed(51, 3*b+1, b/2), s2},
		{2, randBytes(52, S+5), nil},
		{4, nil, zs},
		{5, compressible(53, 17), s2},
		{6, compressible(54, b), zs},
		{9, mixed(55, 2*b+3, b), zs},
		{10000, nil, s2},
	}
	return newCompressedUpload(t, "b", "k", parts), parts
}

// TestCompressedMultipartRanges extends TestMultipartRanges to objects with
// compressed parts: ranges that start and end on every boundary (0, 1,
// block ± 1, part ± 1, around empty parts, the last byte, the whole
// object), each fetching exactly the stored bytes the map names (read
// ones checked to be all consumed) after opening the block indexes it
// needs, and yielding exactly the plaintext. The fetched range is checked
// against one computed here from the stored layout: from the start of the
// first block read (or the part's start when that is its first block), to
// the end of the last block read, or to the end of the part when that is
// its last block.
func TestCompressedMultipartRanges(t *testing.T) {
	u, parts := compressedLayout(t)
	meta, value := finalizeCompressed(t, u)
	body, plain := u.body(), u.plain()
	total := int64(len(plain))
	pm, err := ReadPartMap(len(parts), int64(len(body)), bodyFetcher(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := pm.VerifyFlags(3, FlagCompressed, meta); err != nil {
		t.Fatal(err)
	}
	if err := pm.Verify(3, meta); !errors.Is(err, ErrManifest) {
		t.Fatalf("verified without the object's compressed flag: %v", err)
	}
	// The stored layout, walked here: each part's start, and for a
	// compressed part where each of its blocks starts (and the index).
	type lay struct {
		start, stored, plain int64
		blocks               []int64 // stored offsets in the part (compressed only)
		bs                   int64
	}
	var layout []lay
	var st int64
	for i, p := range parts {
		l := lay{start: st, stored: int64(len(u.parts[i])), plain: int64(len(p.plain))}
		if p.comp != nil {
			ph := must(ParsePartHeader(u.parts[i]))
			op := must(OpenPart(ph, instDEK[i%2], "b", "k", u.upload))
			io, in := must2(ph.IndexRange())
			idx := must(op.OpenIndex(u.parts[i][io : io+in]))
			op.Close()
			l.blocks, l.bs = idx.starts, int64(p.comp.BlockSize)
		}
		layout = append(layout, l)
		st += l.stored
	}
	wantFetch := func(off, n int64) (from, to int64) {
		var ps int64
		from, to = -1, -1
		for _, l := range layout {
			a, e := max(off, ps), min(off+n, ps+l.plain)
			if a < e { // the part holds some of the range
				pf, pt := int64(PartHeaderSize), l.stored // whole
				if l.blocks != nil {
					fb, lb := (a-ps)/l.bs, (e-ps-1)/l.bs
					pf = PartHeaderSize + l.blocks[fb]
					if int(lb) < len(l.blocks)-2 {
						pt = PartHeaderSize + l.blocks[lb+1]
					}
				} else {
					cOff, cLen := PartStoredRange(l.plain, a-ps, e-a)
					pf, pt = cOff, cOff+cLen
				}
				if from < 0 {
					from = l.start + pf
					if pf == PartHeaderSize {
						from = l.start
					}
				}
				to = l.start + pt
			}
			ps += l.plain
		}
		return from, to
	}
	points := []int64{0, 1, total - 1, total}
	var ps int64
	for _, p := range parts {
		l := int64(len(p.plain))
		for b := int64(0); b < l; b += MinBlockSize { // block (and segment) boundaries
			points = append(points, ps+b-1, ps+b, ps+b+1)
		}
		points = append(points, ps+l-1, ps+l, ps+l+1)
		ps += l
	}
	slices.Sort(points)
	points = slices.Compact(points)
	points = slices.DeleteFunc(points, func(p int64) bool { return p < 0 || p > total })
	chunks := []int{4096, 0, 1 << 20, 7, 65535}
	ranges := 0
	for i, a := range points {
		for _, b := range points[i+1:] {
			off, n := a, b-a
			ix, err := readIndexes(body, pm, off, n, u.open())
			if err != nil {
				t.Fatal(err)
			}
			f, err := pm.FetchRangeIndexed(off, n, ix)
			if wf, wt := wantFetch(off, n); err != nil || f.From != wf || f.To != wt {
				t.Fatalf("FetchRange(%d, %d) = %+v, %v; want [%d, %d)", off, n, f, err, wf, wt)
			}
			if len(ix) > 0 {
				if _, err := pm.FetchRange(off, n); !errors.Is(err, ErrRange) {
					t.Fatalf("range [%d,+%d) without its block indexes: %v", off, n, err)
				}
			}
			chunk := chunks[ranges%len(chunks)]
			if n <= 64 && ranges%3 == 0 {
				chunk = 1
			}
			ranges++
			got, err := readMultipart(body, pm, off, n, u.open(), chunk)
			if err != nil || !bytes.Equal(got, plain[off:off+n]) {
				t.Fatalf("range [%d,+%d) (chunk %d): %v, %d bytes, equal %v", off, n, chunk, err, len(got), bytes.Equal(got, plain[off:off+n]))
			}
		}
	}
	t.Logf("%d boundary points, %d ranges; %d plaintext bytes stored in %d", len(points), ranges, total, len(body))
	for _, chunk := range append(chunks, 1) {
		got, err := readMultipart(body, pm, 0, total, u.open(), chunk)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("whole object (chunk %d): %v", chunk, err)
		}
	}
	if got, err := readCompressedObject(t, u, value, body, 0, -1); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("whole object through its header: %v", err)
	}
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// TestCompressedMultipartBig: an object of parts around the 5 MiB rule
// (S3 refuses a part under 5 MiB that is not the last): an 8 MiB and a
// 5 MiB − 20 KiB compressible part each stored in exactly 5 MiB, a 6 MiB
// random part stored raw (a version 2 part), a compressible 64 MiB-block
// part, and a small last part stored small; random ranges bit-exact.
func TestCompressedMultipartBig(t *testing.T) {
	const mib = 1 << 20
	parts := []cpart{
		{1, compressible(61, 8*mib), &Compression{AlgS2, DefaultBlockSize}},
		{2, compressible(62, 5*mib-int(PartOverhead)), &Compression{AlgZstd, DefaultBlockSize}},
		{3, randBytes(63, 6*mib), nil},
		{4, mixed(64, 9*mib, 3*mib), &Compression{AlgZstd, MaxBlockSize}},
		{5, compressible(65, 100000), &Compression{AlgS2, DefaultBlockSize}},
	}
	u := newCompressedUpload(t, "b", "k", parts)
	_, value := finalizeCompressed(t, u)
	for i, want := range []int64{MinStoredPartSize, MinStoredPartSize, 6*mib + PartOverhead, -1, -1} {
		if want > 0 && int64(len(u.parts[i])) != want {
			t.Fatalf("part %d stored in %d, want %d", i+1, len(u.parts[i]), want)
		}
		if i < len(parts)-1 && int64(len(u.parts[i])) < MinStoredPartSize {
			t.Fatalf("part %d stored in %d < 5 MiB", i+1, len(u.parts[i]))
		}
	}
	if last := len(u.parts[4]); last >= 100000 {
		t.Fatalf("the small last part stored in %d", last)
	}
	body, plain := u.body(), u.plain()
	total := int64(len(plain))
	t.Logf("%d plaintext bytes stored in %d", total, len(body))
	if got, err := readCompressedObject(t, u, value, body, 0, -1); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("whole: %v", err)
	}
	rng := mrand.New(mrand.NewPCG(6, 6))
	for range 60 {
		off := rng.Int64N(total)
		n := 1 + rng.Int64N(min(total-off, 3*mib))
		if got, err := readCompressedObject(t, u, value, body, off, n); err != nil || !bytes.Equal(got, plain[off:off+n]) {
			t.Fatalf("range [%d, +%d): %v", off, n, err)
		}
	}
}

// TestCompressedMultipartTamper: what the store could change in an object
// with compressed parts is refused, and no plaintext of a damaged part is
// returned.
func TestCompressedMultipartTamper(t *testing.T) {
	const mib = 1 << 20
	b := MinBlockSize
	parts := []cpart{
		{1, compressible(71, 5*mib), &Compression{AlgS2, b}}, // padded to 5 MiB
		{2, mixed(72, 3*b+9, b), &Compression{AlgZstd, b}},
		{3, randBytes(73, 1000), nil},
		{4, compressible(74, 2*b), &Compression{AlgS2, b}},
	}
	u := newCompressedUpload(t, "b", "k", parts)
	meta, value := finalizeCompressed(t, u)
	body, plain := u.body(), u.plain()
	if got, err := readCompressedObject(t, u, value, body, 0, -1); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("untouched: %v", err)
	}
	p1 := must(ParsePartHeader(u.parts[0]))
	if p1.PadSize() == 0 {
		t.Fatal("part 1 is not padded")
	}
	bOff := bodyLenOffset(p1)
	start2 := int64(len(u.parts[0]))
	bad := []error{ErrAuth, ErrFormat, ErrManifest, ErrTruncated, ErrSize}
	edit := func(what string, mod func(body []byte) []byte) {
		t.Helper()
		tb := mod(slices.Clone(body))
		got, err := readCompressedObject(t, u, value, tb, 0, -1)
		mustFail(t, what, got, plain, err, bad...)
	}
	// B changed (and the header tag with it, or not).
	edit("B+1", func(x []byte) []byte { x[bOff+7]++; return x })
	edit("B-16", func(x []byte) []byte { binary.BigEndian.PutUint64(x[bOff:], uint64(p1.BodyLen()-16)); return x })
	// Offsets 6 and 7 of a compressed part's header.
	for _, v := range []byte{17, 18, 22} {
		edit(fmt.Sprintf("block size 2^%d", v), func(x []byte) []byte { x[6] = v; return x })
	}
	edit("algorithm zstd", func(x []byte) []byte { x[7] = algByteZstd; return x })
	edit("algorithm 0", func(x []byte) []byte { x[7] = 0; return x })
	// The part's compressed flag cleared at the store (a part of segments
	// with those bytes does not parse, or does not open).
	edit("part flag cleared", func(x []byte) []byte { x[5] = 0; return x })
	// A padding byte: the whole read and a range reaching the last block
	// fail; a range that stops before it does not need it.
	padAt := int64(PartHeaderSize) + p1.BodyLen() + p1.PadSize()/2
	edit("padding byte", func(x []byte) []byte { x[padAt] = 1; return x })
	{
		tb := slices.Clone(body)
		tb[padAt] = 1
		got, err := readCompressedObject(t, u, value, tb, 5*mib-10, 20)
		mustFail(t, "range over a non-zero padding", got, plain, err, bad...)
		if got, err := readCompressedObject(t, u, value, tb, 1000, 100); err != nil || !bytes.Equal(got, plain[1000:1100]) {
			t.Fatalf("range before the padding: %v", err)
		}
	}
	// A block dropped from part 2 (the header kept): the stored size no
	// longer adds up. The same with B fixed to match would need the
	// header tag.
	{
		ph := must(ParsePartHeader(u.parts[1]))
		op := must(OpenPart(ph, instDEK[1], "b", "k", u.upload))
		io, in := must2(ph.IndexRange())
		idx := must(op.OpenIndex(u.parts[1][io : io+in]))
		op.Close()
		from, to := start2+PartHeaderSize+idx.starts[1], start2+PartHeaderSize+idx.starts[2]
		edit("block dropped", func(x []byte) []byte { return slices.Concat(x[:from], x[to:]) })
		// Two blocks swapped (same lengths are not needed: the nonces differ).
		b0, b1 := body[start2+PartHeaderSize+idx.starts[0]:from], body[from:to]
		edit("blocks swapped", func(x []byte) []byte {
			return slices.Concat(x[:start2+PartHeaderSize], b1, b0, x[to:])
		})
	}
	// Parts swapped in stored order.
	edit("parts swapped", func(x []byte) []byte {
		return slices.Concat(u.parts[1], u.parts[0], u.parts[2], u.parts[3])
	})
	// Every 997th byte of the compressed parts after part 1's padding, one
	// at a time.
	for pos := start2; pos < int64(len(body)); pos += 997 {
		edit(fmt.Sprintf("byte %d", pos), func(x []byte) []byte { x[pos] ^= 0x40; return x })
	}
	// The object header's flag cleared at the store: the header does not
	// open (the metadata AAD covers it).
	{
		raw := rawHeader(t, value)
		raw[5] &^= byte(FlagCompressed)
		h, err := ParseHeader(headerEncoding.EncodeToString(raw))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(h, instDEK[0], "b", "k"); !errors.Is(err, ErrAuth) {
			t.Fatalf("object header flag cleared: %v", err)
		}
	}
	// The same parts completed under an object header without the flag (a
	// client that altered its upload id to compress, or a store that
	// splices compressed parts in): refused at completion and at reading.
	{
		o, err := NewObject(instDEK[0], instKI[0], "b", "k", LayoutMultipart, meta.Encode())
		if err != nil {
			t.Fatal(err)
		}
		got, err := readCompressedObject(t, u, o.HeaderValue(), body, 0, -1)
		o.Close()
		mustFail(t, "compressed parts under a header without the flag", got, plain, err, ErrManifest)
	}
	// The block index of another part, or of the right part read at
	// another object's offset, is refused.
	{
		pm := must(ReadPartMap(len(parts), int64(len(body)), bodyFetcher(body)))
		if err := pm.VerifyFlags(3, FlagCompressed, meta); err != nil {
			t.Fatal(err)
		}
		off := int64(len(parts[0].plain)) + 10
		ix, err := readIndexes(body, pm, off, 10, u.open())
		if err != nil || ix[1] == nil {
			t.Fatalf("index of part 2: %v", err)
		}
		wrong := PartIndexes{3: ix[1]} // part 2's index given as part 4's
		if _, err := pm.FetchRangeIndexed(int64(len(plain))-10, 5, wrong); !errors.Is(err, ErrRange) {
			t.Fatalf("another part's index: %v", err)
		}
	}
}

// bodyLenOffset is where a compressed part header holds B: right after the
// key commitment (FORMAT.md 12.2.3).
func bodyLenOffset(ph *PartHeader) int {
	return partFixedHead + 2 + len(ph.keyID) + 2 + len(ph.wrapped) + NonceSize + KeySize + TagSize + CommitmentSize
}

// TestCompressedPartReseal: re-wrapping a compressed part (FORMAT.md
// 11.10, s3seal rewrap and migrate) writes a header with the same version,
// flags, block size, algorithm, part number, P and B; the stored part at
// the new path is that header and the old body and padding, and it reads.
// The object header of a copy keeps the compressed flag.
func TestCompressedPartReseal(t *testing.T) {
	u, _ := compressedLayout(t)
	meta, value := finalizeCompressed(t, u)
	var hdrs []*PartHeader
	var nbody [][]byte
	for i, sp := range u.parts {
		ph := must(ParsePartHeader(sp))
		p := must(OpenPart(ph, instDEK[i%2], "b", "k", u.upload))
		nph, err := Config{}.ResealPart(p, instDEK[1], instKI[1], "b2", "k2")
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		old, nw := ph.Bytes(), nph.Bytes()
		if nph.Version() != ph.Version() || nph.Flags() != ph.Flags() || !slices.Equal(old[4:20], nw[4:20]) ||
			nph.BodyLen() != ph.BodyLen() || nph.CiphertextSize() != ph.CiphertextSize() {
			t.Fatalf("part %d: resealed header % x B %d, was % x B %d", ph.PartNumber(), nw[4:20], nph.BodyLen(), old[4:20], ph.BodyLen())
		}
		if ph.Compression() != nil && !bytes.Equal(old[bodyLenOffset(ph):bodyLenOffset(ph)+8], nw[bodyLenOffset(nph):bodyLenOffset(nph)+8]) {
			t.Fatalf("part %d: B bytes differ", ph.PartNumber())
		}
		hdrs = append(hdrs, nph)
		nbody = append(nbody, slices.Concat(nw, sp[PartHeaderSize:]))
	}
	npm, err := PartMapOf(hdrs)
	if err != nil {
		t.Fatal(err)
	}
	nmeta := *meta
	if nmeta.Manifest, err = npm.ManifestFlags(u.upload, FlagCompressed); err != nil {
		t.Fatal(err)
	}
	// The destination header: an existing one resealed (a copy keeps the
	// flag), then a fresh one with the new manifest.
	h := must(ParseHeader(value))
	o := must(Open(h, instDEK[0], "b", "k"))
	cv, err := o.Reseal(instDEK[1], instKI[1], "b2", "k2", nmeta.Encode())
	o.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ch := must(ParseHeader(cv)); ch.Flags()&FlagCompressed == 0 || ch.Version() != 3 {
		t.Fatalf("copied header: v%d flags %#x", ch.Version(), ch.Flags())
	}
	dst := &mpUpload{bucket: "b2", key: "k2", version: 3, upload: u.upload, nums: u.nums, plains: u.plains, parts: nbody}
	got, err := readCompressedObjectWith(t, dst, cv, slices.Concat(nbody...), map[string][]byte{"key-b": instDEK[1]})
	if err != nil || !bytes.Equal(got, u.plain()) || len(got) == 0 {
		t.Fatalf("re-wrapped object: %v", err)
	}
	// The source path's header and parts do not open at the destination.
	if _, err := readCompressedObjectWith(t, dst, cv, u.body(), map[string][]byte{"key-a": instDEK[0], "key-b": instDEK[1]}); err == nil {
		t.Fatal("the source parts read at the destination")
	}
}

// readCompressedObjectWith is readCompressedObject for an object whose
// header and parts are all under the data keys deks (the header's first).
func readCompressedObjectWith(t testing.TB, u *mpUpload, value string, body []byte, deks map[string][]byte) ([]byte, error) {
	t.Helper()
	h := must(ParseHeader(value))
	o, err := Open(h, deks[h.KeyInfo().KeyID], u.bucket, u.key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	meta := must(DecodeMeta(o.Meta()))
	size, err := o.PlainSize(meta, int64(len(body)), etagN(len(u.parts)))
	if err != nil {
		return nil, err
	}
	pm, err := ReadPartMap(len(u.parts), int64(len(body)), bodyFetcher(body))
	if err != nil {
		return nil, err
	}
	if err := pm.VerifyFlags(h.Version(), h.Flags(), meta); err != nil {
		return nil, err
	}
	return readMultipart(body, pm, 0, size, openWith(deks, u.bucket, u.key, u.upload), 1<<16)
}

// FuzzCompressedPart: a whole stored compressed part (header, body,
// padding), changed anywhere, either fails to parse, open or decrypt, or
// yields exactly the genuine part's plaintext: never other bytes.
func FuzzCompressedPart(f *testing.F) {
	upload := bytes.Repeat([]byte{7}, UploadIDSize)
	plain := slices.Concat(compressible(81, MinBlockSize), randBytes(82, 1000))
	comp := Compression{AlgS2, MinBlockSize}
	p, err := Config{Rand: mrand.NewChaCha8([32]byte{81})}.NewCompressedPart(instDEK[0], instKI[0], "b", "k", upload, 3, int64(len(plain)), comp)
	if err != nil {
		f.Fatal(err)
	}
	var body bytes.Buffer
	ph, err := p.EncryptCompressed(bytes.NewReader(plain), &body)
	p.Close()
	if err != nil {
		f.Fatal(err)
	}
	genuine := slices.Concat(ph.Bytes(), body.Bytes())
	// The fuzzer edits the fields region (zero-padded), the tag and the
	// body separately, to keep inputs small.
	f.Add(bytes.TrimRight(genuine[:partTagOffset], "\x00"), genuine[partTagOffset:PartHeaderSize], body.Bytes())
	f.Fuzz(func(t *testing.T, head, tag, b []byte) {
		if len(head) > partTagOffset || len(tag) > TagSize {
			return
		}
		hb := make([]byte, PartHeaderSize)
		copy(hb, head)
		copy(hb[partTagOffset:], tag)
		ph, err := ParsePartHeader(hb)
		if err != nil {
			return
		}
		p, err := OpenPart(ph, instDEK[0], "b", "k", upload)
		if err != nil {
			return
		}
		defer p.Close()
		got, err := io.ReadAll(p.DecryptReader(bytes.NewReader(b), 0, ph.PlainLen()))
		if err == nil && !bytes.Equal(got, plain) {
			t.Fatalf("a changed part decrypted to %d other bytes", len(got))
		}
		if err != nil && len(got) > 0 && !bytes.HasPrefix(plain, got) {
			t.Fatal("a failing read returned bytes that are not the plaintext")
		}
	})
}
