package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"slices"
	"testing"
)

// wantFetch computes, independently of FetchRange, the stored bytes a
// reader needs for plaintext [off, off+n) of parts of the given sizes:
// from the segment holding off (from the part's header when that is the
// part's first segment) to the end of the segment holding the last byte,
// or of its part when that is the part's last segment (the padding is
// checked). Empty parts hold no byte, so no range starts or ends in one.
func wantFetch(sizes []int64, off, n int64) Fetch {
	var f Fetch
	var ps, ss int64 // plaintext and stored start of the part
	found := false
	for _, l := range sizes {
		seg := int64(PartSegmentSize(l))
		if !found && off < ps+l {
			k := (off - ps) / seg
			f.FirstOffset, f.From, f.HeaderInline, found = ss, ss, k == 0, true
			if k > 0 {
				f.From = ss + PartHeaderSize + k*(seg+TagSize)
			}
		}
		if end := off + n - 1; found && end < ps+l {
			k := (end - ps) / seg
			if last := (l+seg-1)/seg - 1; k == last {
				f.To = ss + l + PartOverhead
			} else {
				f.To = ss + PartHeaderSize + (k+1)*(seg+TagSize)
			}
			return f
		}
		ps, ss = ps+l, ss+l+PartOverhead
	}
	panic(fmt.Sprintf("range [%d,+%d) outside parts %v", off, n, sizes))
}

// syntheticMap is the part map of parts of the given sizes, numbered from
// 1, without any part behind it (for the arithmetic alone).
func syntheticMap(t testing.TB, sizes []int64) *PartMap {
	t.Helper()
	var hdrs []*PartHeader
	var stored int64
	for i, l := range sizes {
		hdrs = append(hdrs, &PartHeader{version: 2, partNumber: i + 1, plainLen: l, segSize: PartSegmentSize(l)})
		stored += PartCiphertextSize(l)
	}
	pm, err := newPartMap(hdrs, stored)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

// FetchRange over random ranges of random layouts, parts up to 5 GiB
// (segments up to 8 MiB) and empty parts anywhere.
func TestFetchRangeArithmetic(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(21, 21))
	for range 300 {
		var sizes []int64
		for range 1 + rng.IntN(6) {
			switch rng.IntN(4) {
			case 0:
				sizes = append(sizes, 0)
			case 1:
				sizes = append(sizes, rng.Int64N(MaxPartSize+1))
			default:
				sizes = append(sizes, rng.Int64N(4*S))
			}
		}
		pm := syntheticMap(t, sizes)
		total := pm.Size()
		if total == 0 {
			if _, err := pm.FetchRange(0, 1); !errors.Is(err, ErrRange) {
				t.Fatalf("empty object: %v", err)
			}
			continue
		}
		for range 50 {
			off := rng.Int64N(total)
			n := 1 + rng.Int64N(total-off)
			if rng.IntN(2) == 0 {
				n = 1 + rng.Int64N(min(total-off, 3*S))
			}
			got, err := pm.FetchRange(off, n)
			if want := wantFetch(sizes, off, n); err != nil || got != want {
				t.Fatalf("sizes %v, [%d,+%d): %+v, %v; want %+v", sizes, off, n, got, err, want)
			}
		}
	}
	pm := syntheticMap(t, []int64{10, 0, 5})
	// Including ranges whose end overflows int64 (FetchRange panicked on them).
	for _, r := range [][2]int64{{0, 0}, {-1, 1}, {0, 16}, {15, 1}, {14, 2}, {5, -1}, {1, math.MaxInt64}, {math.MaxInt64, 1}, {math.MaxInt64, math.MaxInt64}} {
		if _, err := pm.FetchRange(r[0], r[1]); !errors.Is(err, ErrRange) {
			t.Errorf("FetchRange(%d, %d): %v, want ErrRange", r[0], r[1], err)
		}
	}
}

// mpLayout is a multipart object with parts of many shapes: several
// segments, empty parts in the middle and at the end, a tiny one, one of
// exactly one segment, sparse part numbers.
func mpLayout(t testing.TB) (*mpUpload, *PartMap, []int64) {
	t.Helper()
	nums := []int{1, 3, 4, 7, 8, 9, 10000}
	sizes := []int{3*S + 1, 0, 17, S, 0, 2*S + 3, 0}
	u := newUpload(t, 2, "b", "k", nums, sizes, 31)
	body := u.body()
	pm, err := ReadPartMap(len(nums), int64(len(body)), bodyFetcher(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := pm.Verify(Version, u.finalize(t)); err != nil {
		t.Fatal(err)
	}
	var sz []int64
	for _, s := range sizes {
		sz = append(sz, int64(s))
	}
	return u, pm, sz
}

// Ranges that start and end on every boundary: 0, 1, segment ± 1, part ±
// 1, around empty parts, the first and last byte, the whole object; each
// fetches exactly the stored bytes FetchRange names and yields exactly the
// plaintext, read in chunks of several sizes and through WriteTo.
func TestMultipartRanges(t *testing.T) {
	u, pm, sizes := mpLayout(t)
	body, plain := u.body(), u.plain()
	total := int64(len(plain))
	points := []int64{0, 1, total - 1, total}
	var ps int64
	for _, l := range sizes {
		for b := int64(0); b < l; b += S { // segment boundaries (the part's start among them)
			points = append(points, ps+b-1, ps+b, ps+b+1)
		}
		points = append(points, ps+l-1, ps+l, ps+l+1) // the part's end
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
			f, err := pm.FetchRange(off, n)
			if want := wantFetch(sizes, off, n); err != nil || f != want {
				t.Fatalf("FetchRange(%d, %d) = %+v, %v; want %+v", off, n, f, err, want)
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
	t.Logf("%d boundary points, %d ranges", len(points), ranges)
	// The whole object with every chunk size, and byte by byte.
	for _, chunk := range append(chunks, 1) {
		got, err := readMultipart(body, pm, 0, total, u.open(), chunk)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("whole object (chunk %d): %v", chunk, err)
		}
	}
}

func TestMultipartReaderErrors(t *testing.T) {
	u, pm, _ := mpLayout(t)
	body, plain := u.body(), u.plain()
	total := int64(len(plain))
	fetch := bodyFetcher(body)
	whole, _ := pm.FetchRange(0, total)
	src := func() *bytes.Reader { return bytes.NewReader(body[whole.From:whole.To]) }
	read := func(r io.Reader) ([]byte, error) { return readAllBuf(r, 4096) }

	t.Run("opened for another path or upload", func(t *testing.T) {
		other := bytes.Clone(u.upload)
		other[3] ^= 1
		for _, open := range []PartOpener{
			openWith(instMap, "b", "k2", u.upload), openWith(instMap, "b2", "k", u.upload),
			openWith(instMap, "b", "k", other), openWith(instMap, "b", "k", nil),
		} {
			got, err := read(MultipartReader(src(), pm, nil, 0, total, open))
			mustFail(t, "other binding", got, plain, err, ErrAuth)
			if len(got) != 0 {
				t.Fatal("plaintext returned")
			}
		}
	})
	t.Run("opener fails", func(t *testing.T) {
		boom := errors.New("kms down")
		calls := 0
		open := func(ph *PartHeader) (*Part, error) {
			if calls++; calls == 3 {
				return nil, boom
			}
			return u.open()(ph)
		}
		got, err := read(MultipartReader(src(), pm, nil, 0, total, open))
		mustFail(t, "opener", got, plain, err, boom)
	})
	t.Run("opener returns another part", func(t *testing.T) {
		open := func(ph *PartHeader) (*Part, error) {
			if ph.PartNumber() == 7 {
				other, _ := fetch(0)
				return u.open()(other)
			}
			return u.open()(ph)
		}
		got, err := read(MultipartReader(src(), pm, nil, 0, total, open))
		mustFail(t, "other part", got, plain, err, ErrAuth)
	})
	t.Run("truncated", func(t *testing.T) {
		for _, cut := range []int64{1, TagSize, PartHeaderSize, PartCiphertextSize(3*S + 1)} {
			s := bytes.NewReader(body[whole.From : whole.To-cut])
			got, err := read(MultipartReader(s, pm, nil, 0, total, u.open()))
			mustFail(t, fmt.Sprintf("cut %d", cut), got, plain, err, ErrTruncated)
		}
	})
	t.Run("reads nothing past the range", func(t *testing.T) {
		f, _ := pm.FetchRange(5, S)
		s := bytes.NewReader(append(bytes.Clone(body[f.From:f.To]), "more"...))
		got, err := read(MultipartReader(s, pm, nil, 5, S, u.open()))
		if err != nil || !bytes.Equal(got, plain[5:5+S]) || s.Len() != len("more") {
			t.Fatalf("err %v, %d left", err, s.Len())
		}
	})
	t.Run("first header", func(t *testing.T) {
		// A range starting in part 1's second segment needs part 1's header.
		off, n := int64(S+3), int64(10)
		f, _ := pm.FetchRange(off, n)
		if f.HeaderInline || f.FirstOffset != 0 {
			t.Fatalf("fetch %+v", f)
		}
		ph1, _ := fetch(0)
		ph3, _ := fetch(PartCiphertextSize(3*S+1) + PartCiphertextSize(0))
		s := func() io.Reader { return bytes.NewReader(body[f.From:f.To]) }
		if _, err := read(MultipartReader(s(), pm, nil, off, n, u.open())); !errors.Is(err, ErrRange) {
			t.Fatalf("missing first header: %v", err)
		}
		if got, err := read(MultipartReader(s(), pm, ph3, off, n, u.open())); !errors.Is(err, ErrManifest) || len(got) != 0 {
			t.Fatalf("another part's header: %v", err)
		}
		if got, err := read(MultipartReader(s(), pm, ph1, off, n, u.open())); err != nil || !bytes.Equal(got, plain[off:off+n]) {
			t.Fatalf("own header: %v", err)
		}
		if _, err := read(MultipartReader(src(), pm, ph1, 0, total, u.open())); !errors.Is(err, ErrRange) {
			t.Fatalf("header given for a range that includes it: %v", err)
		}
	})
	t.Run("invalid ranges", func(t *testing.T) {
		for _, r := range [][2]int64{{0, 0}, {-1, 2}, {total, 1}, {total - 1, 2}, {0, total + 1}, {1, math.MaxInt64}} {
			if _, err := read(MultipartReader(src(), pm, nil, r[0], r[1], u.open())); !errors.Is(err, ErrRange) {
				t.Errorf("[%d,+%d): %v", r[0], r[1], err)
			}
		}
	})
	t.Run("close", func(t *testing.T) {
		r := MultipartReader(src(), pm, nil, 0, total, u.open())
		buf := make([]byte, 100)
		if _, err := io.ReadFull(r, buf); err != nil || !bytes.Equal(buf, plain[:100]) {
			t.Fatal(err)
		}
		if err := r.(io.Closer).Close(); err != nil {
			t.Fatal(err)
		}
		if n, err := r.Read(buf); n != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("read after close: %d, %v", n, err)
		}
	})
	t.Run("tampered segment, WriteTo", func(t *testing.T) {
		tb := bytes.Clone(body)
		pos := int(PartCiphertextSize(3*S+1)+PartCiphertextSize(0)) + PartHeaderSize + 5 // in the segment of part number 4
		tb[pos] ^= 1
		got, err := readMultipart(tb, pm, 0, total, u.open(), 0)
		mustFail(t, "flip", got, plain, err, ErrAuth)
		if len(got) > 3*S+1 {
			t.Fatalf("%d bytes written", len(got))
		}
	})
}
