package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"testing"
	"testing/iotest"
)

const S = SegmentSize

func TestCiphertextSize(t *testing.T) {
	for _, tc := range []struct{ plain, cipher int64 }{
		{0, 16}, {1, 17}, {S - 1, S + 15}, {S, S + 16}, {S + 1, S + 1 + 32},
		{2 * S, 2*S + 32}, {2*S + 1, 2*S + 1 + 48}, {5 << 30, 5<<30 + 16*(5<<30/S)},
	} {
		if got := CiphertextSize(tc.plain); got != tc.cipher {
			t.Errorf("CiphertextSize(%d) = %d, want %d", tc.plain, got, tc.cipher)
		}
		if got, err := PlaintextSize(tc.cipher); err != nil || got != tc.plain {
			t.Errorf("PlaintextSize(%d) = %d, %v, want %d", tc.cipher, got, err, tc.plain)
		}
	}
}

// Every stored size up to a bound either inverts exactly or is rejected, and
// exactly the sizes CiphertextSize produces are accepted.
func TestPlaintextSizeExhaustive(t *testing.T) {
	const maxPlain = 4*S + 100
	prev := int64(-1)
	valid := map[int64]int64{}
	for p := int64(0); p <= maxPlain; p++ {
		c := CiphertextSize(p)
		if c <= prev {
			t.Fatalf("CiphertextSize not strictly increasing at %d", p)
		}
		prev = c
		valid[c] = p
	}
	for c := int64(-2); c <= CiphertextSize(maxPlain); c++ {
		p, err := PlaintextSize(c)
		want, ok := valid[c]
		switch {
		case ok && (err != nil || p != want):
			t.Fatalf("PlaintextSize(%d) = %d, %v; want %d", c, p, err, want)
		case !ok && !errors.Is(err, ErrSize):
			t.Fatalf("PlaintextSize(%d) = %d, %v; want ErrSize", c, p, err)
		}
	}
}

func TestCipherRange(t *testing.T) {
	for _, tc := range []struct {
		name             string
		plain, off, n    int64
		wantOff, wantLen int64
	}{
		{"empty object", 0, 0, 0, 0, 16},
		{"one byte", 1, 0, 1, 0, 17},
		{"empty range", 100, 5, 0, 0, 0},
		{"first segment", 3 * S, 10, 10, 0, S + 16},
		{"second segment", 3 * S, S, 1, S + 16, S + 16},
		{"straddle", 3 * S, S - 1, 2, 0, 2 * (S + 16)},
		{"last partial", 3*S + 5, 3 * S, 5, 3 * (S + 16), 21},
		{"whole", 3*S + 5, 0, 3*S + 5, 0, CiphertextSize(3*S + 5)},
		{"invalid past end", 10, 5, 6, 0, 0},
		{"invalid negative", 10, -1, 2, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, l := CipherRange(tc.plain, tc.off, tc.n)
			if o != tc.wantOff || l != tc.wantLen {
				t.Fatalf("CipherRange(%d, %d, %d) = %d, %d; want %d, %d", tc.plain, tc.off, tc.n, o, l, tc.wantOff, tc.wantLen)
			}
		})
	}
}

var roundTripSizes = []int{0, 1, 15, 16, 17, S - 1, S, S + 1, 2*S - 1, 2 * S, 2*S + 1, 3*S - 1, 3 * S, 3*S + 1, 7*S + 12345, 16 * S}

func TestRoundTrip(t *testing.T) {
	dek := newDEK(t)
	for _, size := range roundTripSizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			plain := randBytes(uint64(size), size)
			o, body := sealSingle(t, dek, "bkt", "dir/obj", plain)
			if p, err := PlaintextSize(int64(len(body))); err != nil || p != int64(size) {
				t.Fatalf("PlaintextSize(%d) = %d, %v", len(body), p, err)
			}
			h, err := ParseHeader(o.HeaderValue())
			if err != nil {
				t.Fatal(err)
			}
			o2, err := Open(h, dek, "bkt", "dir/obj")
			if err != nil {
				t.Fatal(err)
			}
			defer o2.Close()
			// Whole object with several read patterns.
			for _, chunk := range []int{1 << 20, S + 16, S, 4096, 1000, 7} {
				if chunk < 100 && size > 3*S {
					continue
				}
				got, err := decryptRange(o2, body, int64(size), 0, int64(size), chunk)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("chunk %d: whole object: err %v, equal %v", chunk, err, bytes.Equal(got, plain))
				}
			}
			// io.Copy uses WriteTo.
			var buf bytes.Buffer
			cOff, cLen := CipherRange(int64(size), 0, int64(size))
			if _, err := io.Copy(&buf, o2.DecryptReader(bytes.NewReader(body[cOff:cOff+cLen]), int64(size), 0, int64(size))); err != nil || !bytes.Equal(buf.Bytes(), plain) {
				t.Fatalf("WriteTo: %v", err)
			}
			// Ranges around every boundary.
			rng := mrand.New(mrand.NewPCG(uint64(size), 1))
			for i := 0; i < 50 && size > 0; i++ {
				off := rng.Int64N(int64(size))
				n := rng.Int64N(int64(size)-off) + 1
				got, err := decryptRange(o2, body, int64(size), off, n, 1+rng.IntN(3*S))
				if err != nil || !bytes.Equal(got, plain[off:off+n]) {
					t.Fatalf("range [%d,+%d): err %v", off, n, err)
				}
			}
		})
	}
}

// The encrypted stream is the same whatever the caller's read pattern.
func TestEncryptReadPatterns(t *testing.T) {
	dek := newDEK(t)
	plain := randBytes(9, 5*S+77)
	seq := &seqRand{}
	ref := func() []byte {
		seq.n = 0
		o, err := Config{Rand: seq}.NewObject(dek, testKI, "b", "k", LayoutSingle, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(o.EncryptReader(bytes.NewReader(plain), int64(len(plain))))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := ref()
	for _, tc := range []struct {
		name string
		read func(io.Reader) ([]byte, error)
		src  func([]byte) io.Reader
	}{
		{"big buffer", func(r io.Reader) ([]byte, error) { return readAllBuf(r, 1<<22) }, nil},
		{"odd buffer", func(r io.Reader) ([]byte, error) { return readAllBuf(r, 3*S+5) }, nil},
		{"small buffer", func(r io.Reader) ([]byte, error) { return readAllBuf(r, 333) }, nil},
		{"WriteTo", func(r io.Reader) ([]byte, error) { var b bytes.Buffer; _, err := io.Copy(&b, r); return b.Bytes(), err }, nil},
		{"one-byte source", func(r io.Reader) ([]byte, error) { return readAllBuf(r, 1<<20) }, func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
		{"data+EOF source", func(r io.Reader) ([]byte, error) { return readAllBuf(r, 1<<20) }, func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
		{"half source", func(r io.Reader) ([]byte, error) { return readAllBuf(r, 1000) }, func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq.n = 0
			o, err := Config{Rand: seq}.NewObject(dek, testKI, "b", "k", LayoutSingle, nil)
			if err != nil {
				t.Fatal(err)
			}
			var src io.Reader = bytes.NewReader(plain)
			if tc.src != nil {
				src = tc.src(plain)
			}
			got, err := tc.read(o.EncryptReader(src, int64(len(plain))))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("err %v, equal %v (%d vs %d bytes)", err, bytes.Equal(got, want), len(got), len(want))
			}
		})
	}
}

// seqRand is a deterministic "random" source for tests.
type seqRand struct{ n byte }

func (r *seqRand) Read(p []byte) (int, error) {
	for i := range p {
		r.n++
		p[i] = r.n
	}
	return len(p), nil
}

// Property test: random sizes (biased to segment boundaries) and random
// ranges, each compared with the plaintext.
func TestPropertyRandomSizesAndRanges(t *testing.T) {
	dek := newDEK(t)
	rng := mrand.New(mrand.NewPCG(42, 42))
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	big := randBytes(7, 6*S+100)
	for i := 0; i < iters; i++ {
		var size int
		switch rng.IntN(3) {
		case 0:
			size = rng.IntN(len(big) + 1)
		case 1:
			size = min(len(big), rng.IntN(7)*S+rng.IntN(5)-2)
		default:
			size = rng.IntN(300)
		}
		size = max(size, 0)
		plain := big[:size]
		o, body := sealSingle(t, dek, "b", fmt.Sprint(i), plain)
		for j := 0; j < 4; j++ {
			off, n := int64(0), int64(size)
			if size > 0 && j > 0 {
				off = rng.Int64N(int64(size))
				n = rng.Int64N(int64(size) - off + 1) // may be 0
			}
			got, err := decryptRange(o, body, int64(size), off, n, 1+rng.IntN(2*S))
			if err != nil || !bytes.Equal(got, plain[off:off+n]) {
				t.Fatalf("size %d range [%d,+%d): err %v equal %v", size, off, n, err, bytes.Equal(got, plain[off:off+n]))
			}
		}
		o.Close()
	}
}

func TestInvalidRange(t *testing.T) {
	dek := newDEK(t)
	plain := randBytes(1, 100)
	o, body := sealSingle(t, dek, "b", "k", plain)
	for _, r := range [][2]int64{{-1, 5}, {0, 101}, {101, 0}, {50, -1}} {
		_, err := readAllBuf(o.DecryptReader(bytes.NewReader(body), 100, r[0], r[1]), 100)
		if !errors.Is(err, ErrRange) {
			t.Errorf("range %v: %v, want ErrRange", r, err)
		}
	}
}

// errAtEOFReader yields data and then err instead of io.EOF, like a body
// whose checksum fails at the end.
type errAtEOFReader struct {
	r   io.Reader
	err error
}

func (e *errAtEOFReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestEncryptEOFRule(t *testing.T) {
	dek := newDEK(t)
	errBadDigest := errors.New("BadDigest")
	for _, size := range []int{0, 1, S - 1, S, S + 1, 3 * S, 3*S + 7} {
		plain := randBytes(3, size)
		lastSeg := CiphertextSize(int64(size)) - (int64(size)/S)*(S+TagSize)
		if size > 0 && size%S == 0 {
			lastSeg = S + TagSize
		}
		for _, tc := range []struct {
			name    string
			src     func() io.Reader
			declare int64
			want    error
		}{
			{"checksum error at EOF", func() io.Reader { return &errAtEOFReader{bytes.NewReader(plain), errBadDigest} }, int64(size), errBadDigest},
			{"checksum error with last data", func() io.Reader {
				return &errAtEOFReader{iotest.DataErrReader(bytes.NewReader(plain)), errBadDigest}
			}, int64(size), errBadDigest},
			{"source short", func() io.Reader { return bytes.NewReader(plain) }, int64(size) + 1, ErrSizeMismatch},
			{"source long", func() io.Reader { return io.MultiReader(bytes.NewReader(plain), bytes.NewReader([]byte{1})) }, int64(size), ErrSizeMismatch},
			{"source error", func() io.Reader { return iotest.ErrReader(errBadDigest) }, int64(size) + 1, errBadDigest},
		} {
			for _, chunk := range []int{1 << 20, 1000} {
				t.Run(fmt.Sprintf("%d/%s/%d", size, tc.name, chunk), func(t *testing.T) {
					o, err := NewObject(dek, testKI, "b", "k", LayoutSingle, nil)
					if err != nil {
						t.Fatal(err)
					}
					got, err := readAllBuf(o.EncryptReader(tc.src(), tc.declare), chunk)
					if !errors.Is(err, tc.want) {
						t.Fatalf("err %v, want %v", err, tc.want)
					}
					// The final segment must never have been emitted.
					if limit := CiphertextSize(tc.declare) - lastSeg; tc.declare == int64(size) && int64(len(got)) > limit {
						t.Fatalf("emitted %d bytes, more than the %d before the final segment", len(got), limit)
					}
					if int64(len(got)) >= CiphertextSize(tc.declare) {
						t.Fatalf("emitted a complete stream (%d bytes) despite the error", len(got))
					}
				})
			}
		}
	}
}

func TestEncryptOnce(t *testing.T) {
	dek := newDEK(t)
	o, err := NewObject(dek, testKI, "b", "k", LayoutSingle, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(o.EncryptReader(bytes.NewReader(nil), 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(o.EncryptReader(bytes.NewReader(nil), 0)); !errors.Is(err, ErrReused) {
		t.Fatalf("second EncryptReader: %v, want ErrReused", err)
	}
	h, _ := ParseHeader(o.HeaderValue())
	o2, err := Open(h, dek, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(o2.EncryptReader(bytes.NewReader(nil), 0)); !errors.Is(err, ErrReused) {
		t.Fatalf("EncryptReader on opened object: %v, want ErrReused", err)
	}
	m, err := NewObject(dek, testKI, "b", "k", LayoutMultipart, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(m.EncryptReader(bytes.NewReader(nil), 0)); !errors.Is(err, ErrLayout) {
		t.Fatalf("EncryptReader on multipart object: %v, want ErrLayout", err)
	}
}

// A reader abandoned midway can be closed; its buffer goes back zeroed.
func TestReaderClose(t *testing.T) {
	dek := newDEK(t)
	plain := randBytes(5, 3*S)
	o, body := sealSingle(t, dek, "b", "k", plain)
	r := o.DecryptReader(bytes.NewReader(body), int64(len(plain)), 0, int64(len(plain)))
	p := make([]byte, 10)
	if _, err := r.Read(p); err != nil {
		t.Fatal(err)
	}
	rc, ok := r.(io.Closer)
	if !ok {
		t.Fatal("DecryptReader does not implement io.Closer")
	}
	if d := r.(*decReader); d.buf == nil {
		t.Fatal("expected a buffer in use")
	}
	buf := r.(*decReader).buf
	_ = rc.Close()
	for _, x := range *buf {
		if x != 0 {
			t.Fatal("buffer not zeroed on Close")
		}
	}
	if _, err := r.Read(p); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}

// One Object serves many concurrent readers (run with -race).
func TestConcurrentReaders(t *testing.T) {
	dek := newDEK(t)
	plain := randBytes(31, 5*S+3)
	o, body := sealSingle(t, dek, "b", "k", plain)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			off := int64(g * 1000)
			got, err := decryptRange(o, body, int64(len(plain)), off, int64(len(plain))-off, 4096+g)
			if err == nil && !bytes.Equal(got, plain[off:]) {
				err = errors.New("mismatch")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestSizeExtremes(t *testing.T) {
	if CiphertextSize(-1) != -1 || CiphertextSize(MaxObjectSize+1) != -1 {
		t.Fatal("CiphertextSize accepts out-of-range sizes")
	}
	for _, c := range []int64{-1, 0, 15, math.MaxInt64, math.MaxInt64 - 15, CiphertextSize(MaxObjectSize) + 1} {
		if _, err := PlaintextSize(c); !errors.Is(err, ErrSize) {
			t.Errorf("PlaintextSize(%d): %v", c, err)
		}
	}
	if p, err := PlaintextSize(CiphertextSize(MaxObjectSize)); err != nil || p != MaxObjectSize {
		t.Errorf("PlaintextSize(max) = %d, %v", p, err)
	}
	for _, r := range [][3]int64{{math.MaxInt64, 0, 1}, {math.MaxInt64, math.MaxInt64 - 1, 1}, {10, 5, math.MaxInt64}} {
		if o, l := CipherRange(r[0], r[1], r[2]); o != 0 || l != 0 {
			t.Errorf("CipherRange%v = %d, %d", r, o, l)
		}
	}
	o, err := NewObject(newDEK(t), testKI, "b", "k", LayoutSingle, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(o.EncryptReader(bytes.NewReader(nil), MaxObjectSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge EncryptReader: %v", err)
	}
}

// Streaming allocates per stream, never per segment.
func TestNoPerSegmentAllocs(t *testing.T) {
	dek := newDEK(t)
	plain := randBytes(41, 64*S)
	o, body := sealSingle(t, dek, "b", "k", plain)
	buf := make([]byte, 32<<10)
	measure := func(size int64) (enc, dec float64) {
		src := bytes.NewReader(plain[:size])
		enc = testing.AllocsPerRun(5, func() {
			oo, _ := NewObject(dek, testKI, "b", "k", LayoutSingle, nil)
			src.Reset(plain[:size])
			if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{oo.EncryptReader(src, size)}, buf); err != nil {
				t.Fatal(err)
			}
		})
		cOff, cLen := CipherRange(int64(len(plain)), 0, size)
		dsrc := bytes.NewReader(body[cOff : cOff+cLen])
		dec = testing.AllocsPerRun(5, func() {
			dsrc.Reset(body[cOff : cOff+cLen])
			if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{o.DecryptReader(dsrc, int64(len(plain)), 0, size)}, buf); err != nil {
				t.Fatal(err)
			}
		})
		return enc, dec
	}
	e1, d1 := measure(S)
	e64, d64 := measure(64 * S)
	if e64 > e1 || d64 > d1 {
		t.Fatalf("allocations grow with length: encrypt %v → %v, decrypt %v → %v", e1, e64, d1, d64)
	}
	t.Logf("allocs per stream: encrypt %v (incl. NewObject), decrypt %v", e64, d64)
}
