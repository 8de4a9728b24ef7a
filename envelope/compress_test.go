package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"testing"
)

// compressible returns n bytes of log-like text: compresses well, but not
// trivially (a counter and pseudo-random fields on every line).
func compressible(seed uint64, n int) []byte {
	rng := mrand.New(mrand.NewPCG(seed, 7))
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"ts":"2026-12-05T04:%02d:%02d.%06dZ","level":"info","req":%d,"path":"/bucket/key-%d","status":%d,"bytes":%d}`+"\n",
			i/60%60, i%60, rng.IntN(1e6), i, rng.IntN(500), []int{200, 204, 404, 500}[rng.IntN(4)], rng.IntN(1<<20))
	}
	return b.Bytes()[:n]
}

// mixed alternates compressible and random stretches, so that some blocks
// are stored compressed and others raw.
func mixed(seed uint64, n, stretch int) []byte {
	out := make([]byte, 0, n)
	for i := 0; len(out) < n; i++ {
		k := min(stretch, n-len(out))
		if i%2 == 0 {
			out = append(out, compressible(seed+uint64(i), k)...)
		} else {
			out = append(out, randBytes(seed+uint64(i), k)...)
		}
	}
	return out
}

// sealCompressed writes plain as a compressed object; it returns the
// object opened again from its header, as a reader would, and the body.
func sealCompressed(t testing.TB, dek []byte, comp Compression, plain []byte) (*Object, []byte) {
	t.Helper()
	meta := &Meta{Size: int64(len(plain)), Compression: &comp}
	w, err := Config{Flags: FlagCompressed}.NewObject(dek, testKI, "b", "k", LayoutSingle, meta.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	body, err := readAllBuf(w.EncryptCompressedReader(bytes.NewReader(plain)), 1000)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(w.HeaderValue())
	if err != nil {
		t.Fatal(err)
	}
	if h.Version() != 3 || h.Flags() != FlagCompressed {
		t.Fatalf("version %d flags %#x", h.Version(), h.Flags())
	}
	o, err := Open(h, dek, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	return o, body
}

// readIndex fetches and opens the index as a range reader does.
func readIndex(o *Object, body []byte) (*BlockIndex, error) {
	off, n, err := o.IndexRange(int64(len(body)))
	if err != nil {
		return nil, err
	}
	return o.OpenIndex(body[off:off+n], int64(len(body)))
}

// compRange reads plaintext [off, off+n) through the index.
func compRange(o *Object, idx *BlockIndex, body []byte, off, n int64, chunk int) ([]byte, error) {
	if n == 0 {
		return readAllBuf(o.DecryptCompressedReader(bytes.NewReader(nil), idx, off, 0), chunk)
	}
	cOff, cLen, err := idx.CipherRange(off, n)
	if err != nil {
		return nil, err
	}
	src := &exactReader{r: bytes.NewReader(body[cOff : cOff+cLen])}
	got, err := readAllBuf(o.DecryptCompressedReader(src, idx, off, n), chunk)
	if err == nil && src.r.Len() != 0 {
		return got, fmt.Errorf("%d stored bytes of the range left unread", src.r.Len())
	}
	return got, err
}

// exactReader fails a read past its end (the reader must not over-read).
type exactReader struct{ r *bytes.Reader }

func (e *exactReader) Read(p []byte) (int, error) { return e.r.Read(p) }

// TestCompressedRoundTrip: every size class (empty, under one block, block
// boundaries ±1, many blocks, mixed raw and compressed blocks), both
// algorithms, the smallest and the default block size: whole reads and
// ranges (every block boundary, random ones) bit-exact, and the body
// smaller than the plaintext when it compresses.
func TestCompressedRoundTrip(t *testing.T) {
	dek := newDEK(t)
	rng := mrand.New(mrand.NewPCG(3, 4))
	for _, alg := range []Algorithm{AlgS2, AlgZstd} {
		for _, bs := range []int{MinBlockSize, DefaultBlockSize} {
			comp := Compression{Algorithm: alg, BlockSize: bs}
			sizes := []int{0, 1, 100, bs - 1, bs, bs + 1, 2*bs - 1, 2 * bs, 3*bs + 17}
			for _, size := range sizes {
				for kind, plain := range map[string][]byte{
					"text": compressible(uint64(size), size), "random": randBytes(uint64(size), size), "mixed": mixed(uint64(size), size, bs/2+3),
				} {
					name := fmt.Sprintf("%s/%d/%d/%s", alg, bs, size, kind)
					o, body := sealCompressed(t, dek, comp, plain)
					lo, hi := comp.CompressedSizeBounds(int64(size))
					if int64(len(body)) < lo || int64(len(body)) > hi {
						t.Fatalf("%s: body %d bytes outside [%d, %d]", name, len(body), lo, hi)
					}
					if kind == "text" && size > 1000 && len(body) > size/2 {
						t.Fatalf("%s: %d bytes stored for %d", name, len(body), size)
					}
					m, _ := DecodeMeta(o.Meta())
					if p, err := o.PlainSize(m, int64(len(body)), `"abc"`); err != nil || p != int64(size) {
						t.Fatalf("%s: PlainSize %d %v", name, p, err)
					}
					for _, chunk := range []int{1 << 20, 777} {
						got, err := readAllBuf(o.DecryptCompressedReader(bytes.NewReader(body), nil, 0, int64(size)), chunk)
						if err != nil || !bytes.Equal(got, plain) {
							t.Fatalf("%s: whole read: %v", name, err)
						}
					}
					idx, err := readIndex(o, body)
					if err != nil {
						t.Fatalf("%s: index: %v", name, err)
					}
					if idx.StoredSize() != int64(len(body)) || int64(idx.Blocks()) != comp.blocks(int64(size)) {
						t.Fatalf("%s: index of %d blocks for %d bytes", name, idx.Blocks(), idx.StoredSize())
					}
					var ranges [][2]int64
					for _, b := range []int64{0, 1, int64(bs) - 1, int64(bs), int64(bs) + 1, int64(size) - 1} {
						if b >= 0 && b < int64(size) {
							ranges = append(ranges, [2]int64{b, 1}, [2]int64{b, int64(size) - b}, [2]int64{0, b + 1})
						}
					}
					for range 20 {
						if size > 0 {
							off := rng.Int64N(int64(size))
							ranges = append(ranges, [2]int64{off, 1 + rng.Int64N(int64(size)-off)})
						}
					}
					for _, r := range ranges {
						got, err := compRange(o, idx, body, r[0], r[1], 4096)
						if err != nil || !bytes.Equal(got, plain[r[0]:r[0]+r[1]]) {
							t.Fatalf("%s: range %v: %v", name, r, err)
						}
					}
					if got, err := compRange(o, idx, body, int64(size), 0, 10); err != nil || len(got) != 0 {
						t.Fatalf("%s: empty range: %v", name, err)
					}
					o.Close()
				}
			}
		}
	}
}

// TestCompressedRangeProperty: for a mixed object of several blocks, every
// range [off, off+n) over a grid that covers each block boundary ±1 reads
// bit-exact and touches only the blocks it needs.
func TestCompressedRangeProperty(t *testing.T) {
	dek := newDEK(t)
	comp := Compression{Algorithm: AlgS2, BlockSize: MinBlockSize}
	size := 4*MinBlockSize + 333
	plain := mixed(9, size, MinBlockSize*3/2)
	o, body := sealCompressed(t, dek, comp, plain)
	defer o.Close()
	idx, err := readIndex(o, body)
	if err != nil {
		t.Fatal(err)
	}
	raw := 0
	for _, h := range idx.hdrs {
		if h&rawBit != 0 {
			raw++
		}
	}
	if raw == 0 || raw == len(idx.hdrs) {
		t.Fatalf("%d of %d blocks raw: want a mix", raw, len(idx.hdrs))
	}
	var pts []int64
	for b := int64(0); b <= int64(size); b += MinBlockSize {
		pts = append(pts, max(b-1, 0), b, min(b+1, int64(size)))
	}
	pts = append(pts, int64(size)-1, int64(size))
	for _, a := range pts {
		for _, e := range pts {
			if e <= a {
				continue
			}
			got, err := compRange(o, idx, body, a, e-a, 1<<16)
			if err != nil || !bytes.Equal(got, plain[a:e]) {
				t.Fatalf("range [%d, %d): %v", a, e, err)
			}
			cOff, cLen, _ := idx.CipherRange(a, e-a)
			first, last := a/MinBlockSize, (e-1)/MinBlockSize
			if cOff != idx.starts[first] || cOff+cLen != idx.starts[last+1] {
				t.Fatalf("range [%d, %d) fetches [%d, +%d)", a, e, cOff, cLen)
			}
		}
	}
}

// TestCompressedRefusals: bad parameters, the wrong readers, copies that
// would change what describes the body.
func TestCompressedRefusals(t *testing.T) {
	dek := newDEK(t)
	cfg := Config{Flags: FlagCompressed}
	for _, m := range []*Meta{
		{Size: 10},
		{Size: 10, Compression: &Compression{Algorithm: "gzip", BlockSize: DefaultBlockSize}},
		{Size: 10, Compression: &Compression{Algorithm: AlgS2, BlockSize: 1000}},
		{Size: 10, Compression: &Compression{Algorithm: AlgS2, BlockSize: MaxBlockSize * 2}},
		{Size: -1, Compression: &Compression{Algorithm: AlgS2, BlockSize: DefaultBlockSize}},
		{Size: MaxCompressedSize + 1, Compression: &Compression{Algorithm: AlgS2, BlockSize: DefaultBlockSize}},
	} {
		if _, err := cfg.NewObject(dek, testKI, "b", "k", LayoutSingle, m.Encode()); !errors.Is(err, ErrFormat) {
			t.Fatalf("%+v: %v", m, err)
		}
	}
	good := (&Meta{Size: 10, Compression: &Compression{Algorithm: AlgS2, BlockSize: DefaultBlockSize}}).Encode()
	// A multipart header with the flag (its parts may be compressed)
	// carries no "z": each part names its own parameters.
	if _, err := cfg.NewObject(dek, testKI, "b", "k", LayoutMultipart, good); !errors.Is(err, ErrFormat) {
		t.Fatalf("multipart with z: %v", err)
	}
	// Compressed parts are made by NewCompressedPart, which takes the
	// parameters; NewPart makes parts of segments only.
	if _, err := cfg.NewPart(dek, testKI, "b", "k", must(NewUploadID()), 1, 10); !errors.Is(err, ErrFormat) {
		t.Fatalf("compressed part: %v", err)
	}
	o, err := cfg.NewObject(dek, testKI, "b", "k", LayoutSingle, good)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := io.ReadAll(o.EncryptReader(bytes.NewReader(make([]byte, 10)), 10)); !errors.Is(err, ErrLayout) {
		t.Fatalf("EncryptReader: %v", err)
	}
	if _, err := io.ReadAll(o.DecryptReader(bytes.NewReader(nil), 10, 0, 10)); !errors.Is(err, ErrLayout) {
		t.Fatalf("DecryptReader: %v", err)
	}
	// The source yields other than the sealed size.
	if _, err := io.ReadAll(o.EncryptCompressedReader(bytes.NewReader(make([]byte, 11)))); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("long source: %v", err)
	}
	o2, _ := cfg.NewObject(dek, testKI, "b", "k", LayoutSingle, good)
	if _, err := io.ReadAll(o2.EncryptCompressedReader(bytes.NewReader(make([]byte, 9)))); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("short source: %v", err)
	}
	if _, err := io.ReadAll(o2.EncryptCompressedReader(bytes.NewReader(make([]byte, 10)))); !errors.Is(err, ErrReused) {
		t.Fatalf("second encryption: %v", err)
	}
	o2.Close()
	// A copy keeps the parameters and size; one that changes them fails.
	if _, err := o.Reseal(dek, testKI, "b2", "k2", good); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Meta{
		{Size: 11, Compression: &Compression{Algorithm: AlgS2, BlockSize: DefaultBlockSize}},
		{Size: 10, Compression: &Compression{Algorithm: AlgZstd, BlockSize: DefaultBlockSize}},
		{Size: 10},
	} {
		if _, err := o.Reseal(dek, testKI, "b2", "k2", m.Encode()); !errors.Is(err, ErrFormat) {
			t.Fatalf("reseal with %+v: %v", m, err)
		}
	}
	// A version 2 blob drops the compression field.
	if m, _ := DecodeMeta((&Meta{Size: 1, Compression: &Compression{Algorithm: AlgS2, BlockSize: DefaultBlockSize}}).EncodeFor(2)); m.Compression != nil {
		t.Fatal("EncodeFor(2) kept z")
	}
}

// TestCompressedTamper: any stored byte flipped, blocks swapped or
// dropped, the body truncated, or the index of another object: every read
// that covers the damage fails (ErrAuth, ErrTruncated, ErrSize or
// ErrFormat for a header that no longer fits its block), and no plaintext
// of a damaged block is returned.
func TestCompressedTamper(t *testing.T) {
	dek := newDEK(t)
	comp := Compression{Algorithm: AlgZstd, BlockSize: MinBlockSize}
	size := 3*MinBlockSize + 100
	plain := mixed(21, size, MinBlockSize)
	o, body := sealCompressed(t, dek, comp, plain)
	defer o.Close()
	idx, err := readIndex(o, body)
	if err != nil {
		t.Fatal(err)
	}
	bad := []error{ErrAuth, ErrTruncated, ErrSize, ErrFormat}
	whole := func(b []byte) ([]byte, error) {
		return readAllBuf(o.DecryptCompressedReader(bytes.NewReader(b), nil, 0, int64(size)), 1<<20)
	}
	// blockOf is the block holding stored offset pos (nb: the index).
	blockOf := func(pos int) int {
		for i := range idx.hdrs {
			if int64(pos) < idx.starts[i+1] {
				return i
			}
		}
		return len(idx.hdrs)
	}
	rng := mrand.New(mrand.NewPCG(5, 6))
	positions := []int{0, 1, 3, 4, 5, len(body) - 1, len(body) - TagSize, len(body) - TagSize - 1}
	for i := range idx.hdrs {
		positions = append(positions, int(idx.starts[i]), int(idx.starts[i])+3, int(idx.starts[i+1])-1)
	}
	for range 200 {
		positions = append(positions, rng.IntN(len(body)))
	}
	for _, pos := range positions {
		tb := bytes.Clone(body)
		tb[pos] ^= 1 << rng.IntN(8)
		got, err := whole(tb)
		mustFail(t, fmt.Sprintf("whole, flip at %d", pos), got, plain, err, bad...)
		if blk := blockOf(pos); len(got) > blk*MinBlockSize {
			t.Fatalf("flip at %d (block %d): %d bytes returned", pos, blk, len(got))
		}
		// The index read apart, and ranges over the damaged block.
		tidx, err := readIndex(o, tb)
		if blk := blockOf(pos); blk == len(idx.hdrs) {
			if err == nil {
				t.Fatalf("flip at %d: tampered index opened", pos)
			}
			continue
		} else if err != nil {
			t.Fatalf("flip at %d: index: %v", pos, err)
		} else {
			off := int64(blk) * MinBlockSize
			n := min(int64(10), int64(size)-off)
			got, err := compRange(o, tidx, tb, off, n, 100)
			mustFail(t, fmt.Sprintf("range over flip at %d", pos), got, plain[off:], err, bad...)
			if len(got) != 0 {
				t.Fatalf("range over flip at %d: %d bytes returned", pos, len(got))
			}
		}
	}
	blk := func(i int) []byte { return body[idx.starts[i]:idx.starts[i+1]] }
	index := body[idx.starts[len(idx.hdrs)]:]
	for name, tb := range map[string][]byte{
		"swap 0 and 1":  bytes.Join([][]byte{blk(1), blk(0), blk(2), blk(3), index}, nil),
		"drop block 2":  bytes.Join([][]byte{blk(0), blk(1), blk(3), index}, nil),
		"repeat 1":      bytes.Join([][]byte{blk(0), blk(1), blk(1), blk(3), index}, nil),
		"no index":      bytes.Join([][]byte{blk(0), blk(1), blk(2), blk(3)}, nil),
		"truncated":     body[:len(body)-1],
		"half":          body[:len(body)/2],
		"empty":         nil,
		"extra block":   bytes.Join([][]byte{blk(0), blk(1), blk(2), blk(3), blk(3), index}, nil),
		"index first":   bytes.Join([][]byte{index, blk(0), blk(1), blk(2), blk(3)}, nil),
		"another index": append(bytes.Join([][]byte{blk(0), blk(1), blk(2), blk(3)}, nil), otherIndex(t, dek, comp, size)...),
	} {
		got, err := whole(tb)
		mustFail(t, name, got, plain, err, bad...)
		if tidx, err := readIndex(o, tb); err == nil {
			// Only bodies with the genuine index at their end get here;
			// their blocks must still not read.
			if _, err := compRange(o, tidx, tb, 0, int64(size), 1<<20); err == nil {
				t.Fatalf("%s: range read succeeded", name)
			}
		}
	}
	// The object opened with a header of another size (the sealed size is
	// authenticated, so only a wrong caller does this): PlainSize refuses
	// stored sizes no compressed body of the sealed size can have.
	m, _ := DecodeMeta(o.Meta())
	for _, stored := range []int64{0, 10, int64(size) + 10000} {
		if _, err := o.PlainSize(m, stored, `"x"`); !errors.Is(err, ErrSize) {
			t.Fatalf("PlainSize(%d): %v", stored, err)
		}
	}
}

// otherIndex is the sealed index of another compressed object of the same
// size (another object key): it does not open here.
func otherIndex(t *testing.T, dek []byte, comp Compression, size int) []byte {
	o, body := sealCompressed(t, dek, comp, mixed(99, size, MinBlockSize))
	defer o.Close()
	off, _, err := o.IndexRange(int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	return body[off:]
}

// TestCompressedLevels: every level of both algorithms writes a body the
// one reader opens, whole and by range, bit-exact, with the same header
// (the level is written nowhere); the levels do work (the best level
// stores text in fewer bytes than the fastest); an unknown level is
// refused before anything is written.
func TestCompressedLevels(t *testing.T) {
	dek := newDEK(t)
	const bs = MinBlockSize
	plain := slices.Concat(compressible(11, 3*bs), randBytes(12, bs), compressible(13, 500))
	for _, alg := range []Algorithm{AlgS2, AlgZstd} {
		comp := Compression{Algorithm: alg, BlockSize: bs}
		meta := (&Meta{Size: int64(len(plain)), Compression: &comp}).Encode()
		sizes := map[Level]int{}
		for _, l := range Levels(alg) {
			name := fmt.Sprintf("%s/%s", alg, l)
			w, err := Config{Flags: FlagCompressed, Level: l}.NewObject(dek, testKI, "b", "k", LayoutSingle, meta)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			body, err := readAllBuf(w.EncryptCompressedReader(bytes.NewReader(plain)), 1000)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			h, err := ParseHeader(w.HeaderValue())
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			o, err := Open(h, dek, "b", "k")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !bytes.Equal(o.Meta(), meta) {
				t.Fatalf("%s: sealed metadata %s, want %s", name, o.Meta(), meta)
			}
			got, err := readAllBuf(o.WholeReader(bytes.NewReader(body), int64(len(plain))), 4096)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s: whole read: %v", name, err)
			}
			idx, err := readIndex(o, body)
			if err != nil || idx.RawBlocks() != 1 || idx.Blocks() != 5 {
				t.Fatalf("%s: index %v", name, err)
			}
			for _, r := range [][2]int64{{0, 1}, {bs - 1, 2}, {2*bs + 7, bs}, {int64(len(plain)) - 10, 10}} {
				got, err := compRange(o, idx, body, r[0], r[1], 333)
				if err != nil || !bytes.Equal(got, plain[r[0]:r[0]+r[1]]) {
					t.Fatalf("%s: range %v: %v", name, r, err)
				}
			}
			o.Close()
			sizes[l] = len(body)
		}
		fastest := Levels(alg)[0]
		if sizes[LevelBest] >= sizes[fastest] {
			t.Errorf("%s: best level stores %d bytes, %s %d: the level is not applied", alg, sizes[LevelBest], fastest, sizes[fastest])
		}
		t.Logf("%s: stored bytes by level %v", alg, sizes)
	}
	for _, c := range []struct {
		alg Algorithm
		l   Level
	}{{AlgS2, LevelFastest}, {AlgZstd, "max"}, {AlgS2, "Best"}} {
		if err := CheckLevel(c.alg, c.l); err == nil {
			t.Errorf("CheckLevel(%s, %s) passed", c.alg, c.l)
		}
		comp := Compression{Algorithm: c.alg, BlockSize: bs}
		meta := (&Meta{Size: 10, Compression: &comp}).Encode()
		if _, err := (Config{Flags: FlagCompressed, Level: c.l}).NewObject(dek, testKI, "b", "k", LayoutSingle, meta); err == nil {
			t.Errorf("NewObject at %s level %q succeeded", c.alg, c.l)
		}
	}
	if err := CheckLevel(AlgZstd, ""); err != nil {
		t.Errorf("the empty level: %v", err)
	}
}
