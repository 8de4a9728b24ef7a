package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"testing"
)

func TestPartSegmentSize(t *testing.T) {
	const MiB = 1 << 20
	for _, tc := range []struct {
		plain int64
		seg   int
	}{
		{0, S}, {1, S}, {5*MiB + 1, S}, {64 * MiB, S}, {64*MiB + 1, 128 << 10},
		{128 * MiB, 128 << 10}, {128*MiB + 1, 256 << 10}, {MaxPartSize, 8 * MiB},
		{MaxPartSize + 1, 0}, {-1, 0},
	} {
		if got := PartSegmentSize(tc.plain); got != tc.seg {
			t.Errorf("PartSegmentSize(%d) = %d, want %d", tc.plain, got, tc.seg)
		}
	}
	rng := mrand.New(mrand.NewPCG(3, 3))
	for range 100000 {
		p := rng.Int64N(MaxPartSize + 1)
		s := PartSegmentSize(p)
		if n := segCount(p, s); n > MaxPartSegments {
			t.Fatalf("part %d: %d segments of %d", p, n, s)
		}
		if s > S && segCount(p, s/2) <= MaxPartSegments {
			t.Fatalf("part %d: segment %d not minimal", p, s)
		}
		if s&(s-1) != 0 {
			t.Fatalf("segment size %d not a power of two", s)
		}
		if PartCiphertextSize(p) != p+PartOverhead {
			t.Fatal("PartCiphertextSize")
		}
		if q, err := PartPlaintextSize(p + PartOverhead); err != nil || q != p {
			t.Fatal("PartPlaintextSize")
		}
	}
}

// testUpload is the upload identity of the test parts that need no other.
var testUpload = []byte("test upload id16")

// sealPart encrypts a whole part of plain bytes for upload and returns the
// stored part.
func sealPart(t testing.TB, dek []byte, ki KeyInfo, bucket, key string, upload []byte, num int, plain []byte) []byte {
	t.Helper()
	p, err := NewPart(dek, ki, bucket, key, upload, num, int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b, err := io.ReadAll(p.EncryptReader(bytes.NewReader(plain)))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != PartCiphertextSize(int64(len(plain))) {
		t.Fatalf("part of %d bytes stored as %d, want %d", len(plain), len(b), PartCiphertextSize(int64(len(plain))))
	}
	return b
}

func openStoredPart(stored, dek []byte, bucket, key string, upload []byte) (*Part, error) {
	ph, err := ParsePartHeader(stored)
	if err != nil {
		return nil, err
	}
	return OpenPart(ph, dek, bucket, key, upload)
}

// partRange decrypts [off, off+n) of a stored part as a ranged GET would.
func partRange(p *Part, stored []byte, off, n int64, chunk int) ([]byte, error) {
	cOff, cLen := PartCipherRange(p.Header(), off, n)
	end := min(cOff+cLen, int64(len(stored)))
	return readAllBuf(p.DecryptReader(bytes.NewReader(stored[min(cOff, end):end]), off, n), chunk)
}

func TestPartRoundTripSmall(t *testing.T) {
	dek := newDEK(t)
	for _, size := range []int{0, 1, S - 1, S, S + 1, 3*S + 5, 5<<20 + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			plain := randBytes(uint64(size), size)
			stored := sealPart(t, dek, testKI, "b", "k", testUpload, 7, plain)
			p, err := openStoredPart(stored, dek, "b", "k", testUpload)
			if err != nil {
				t.Fatal(err)
			}
			ph := p.Header()
			if ph.PartNumber() != 7 || ph.PlainLen() != int64(size) || ph.SegmentSize() != S || ph.KeyInfo().KeyID != testKI.KeyID {
				t.Fatalf("header %d %d %d %q", ph.PartNumber(), ph.PlainLen(), ph.SegmentSize(), ph.KeyInfo().KeyID)
			}
			// Whole part, read from just after the header.
			got, err := readAllBuf(p.DecryptReader(bytes.NewReader(stored[PartHeaderSize:]), 0, int64(size)), 1<<20)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("whole part: %v", err)
			}
			rng := mrand.New(mrand.NewPCG(uint64(size), 9))
			for range 40 {
				if size == 0 {
					break
				}
				off := rng.Int64N(int64(size))
				n := rng.Int64N(int64(size)-off) + 1
				got, err := partRange(p, stored, off, n, 1+rng.IntN(2*S))
				if err != nil || !bytes.Equal(got, plain[off:off+n]) {
					t.Fatalf("range [%d,+%d): %v", off, n, err)
				}
			}
		})
	}
}

// streamPart encrypts a generated part of size bytes through a pipe and
// decrypts it again as it arrives, checking every byte; memory stays
// O(segment size).
func streamPart(t *testing.T, dek []byte, num int, size int64) {
	t.Helper()
	p, err := NewPart(dek, testKI, "b", "big", testUpload, num, size)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		n, err := io.Copy(pw, p.EncryptReader(&patReader{seed: int64(num), n: size}))
		if err == nil && n != PartCiphertextSize(size) {
			err = fmt.Errorf("encrypted %d bytes, want %d", n, PartCiphertextSize(size))
		}
		pw.CloseWithError(err)
	}()
	hdr := make([]byte, PartHeaderSize)
	if _, err := io.ReadFull(pr, hdr); err != nil {
		t.Fatal(err)
	}
	q, err := openStoredPart(hdr, dek, "b", "big", testUpload)
	if err != nil {
		t.Fatal(err)
	}
	if q.Header().SegmentSize() != PartSegmentSize(size) {
		t.Fatalf("segment size %d", q.Header().SegmentSize())
	}
	chk := &patChecker{seed: int64(num), bad: -1}
	n, err := io.Copy(chk, q.DecryptReader(pr, 0, size))
	if err != nil || n != size || chk.bad >= 0 {
		t.Fatalf("decrypted %d of %d bytes, err %v, first mismatch %d", n, size, err, chk.bad)
	}
	if rest, _ := io.Copy(io.Discard, pr); rest != 0 {
		t.Fatalf("%d stored bytes after the part", rest)
	}
}

func TestPartLargeSegments(t *testing.T) {
	dek := newDEK(t)
	streamPart(t, dek, 2, 64<<20+1) // 128 KiB segments
}

// A maximal 5 GiB part (8 MiB segments), streamed; a few seconds.
func TestPartMaxSize(t *testing.T) {
	if testing.Short() {
		t.Skip("5 GiB stream; run without -short")
	}
	streamPart(t, newDEK(t), MaxPartNumber, MaxPartSize)
}

func TestPartLimits(t *testing.T) {
	dek := newDEK(t)
	for _, tc := range []struct {
		num  int
		size int64
		want error
	}{
		{0, 1, ErrRange}, {10001, 1, ErrRange}, {1, -1, ErrTooLarge}, {1, MaxPartSize + 1, ErrTooLarge},
	} {
		if _, err := NewPart(dek, testKI, "b", "k", testUpload, tc.num, tc.size); !errors.Is(err, tc.want) {
			t.Errorf("NewPart(%d, %d): %v, want %v", tc.num, tc.size, err, tc.want)
		}
	}
	if _, err := NewPart(dek, KeyInfo{KeyID: "k", Wrapped: make([]byte, 4000)}, "b", "k", testUpload, 1, 1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized key info: %v", err)
	}
	p, err := NewPart(dek, testKI, "b", "k", testUpload, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(p.EncryptReader(bytes.NewReader([]byte("abc")))); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(p.EncryptReader(bytes.NewReader([]byte("abc")))); !errors.Is(err, ErrReused) {
		t.Fatalf("second EncryptReader: %v", err)
	}
	// The EOF rule holds for parts: a short or failing source never yields a
	// complete part.
	q, _ := NewPart(dek, testKI, "b", "k", testUpload, 1, 2*S)
	out, err := readAllBuf(q.EncryptReader(&errAtEOFReader{bytes.NewReader(make([]byte, 2*S)), io.ErrClosedPipe}), 1<<20)
	if !errors.Is(err, io.ErrClosedPipe) || len(out) > PartHeaderSize+S+16 {
		t.Fatalf("failing source: %v after %d bytes", err, len(out))
	}
}

func TestPartTamper(t *testing.T) {
	dek := newDEK(t)
	const size = 2*S + 100
	plain := randBytes(21, size)
	stored := sealPart(t, dek, testKI, "b", "k", testUpload, 3, plain)
	whole := func(stored []byte, bucket, key string, dek []byte) ([]byte, error) {
		p, err := openStoredPart(stored, dek, bucket, key, testUpload)
		if err != nil {
			return nil, err
		}
		return readAllBuf(p.DecryptReader(bytes.NewReader(stored[PartHeaderSize:]), 0, size), 1<<20)
	}
	if got, err := whole(stored, "b", "k", dek); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("untampered: %v", err)
	}
	anyTyped := []error{ErrFormat, ErrVersion, ErrAuth, ErrCommitment, ErrTruncated}

	t.Run("flip header", func(t *testing.T) {
		for i := range PartHeaderSize {
			if i > 400 && i%61 != 0 && i < PartHeaderSize-TagSize {
				continue // the zero region is sampled
			}
			ts := bytes.Clone(stored)
			ts[i] ^= 0x10
			got, err := whole(ts, "b", "k", dek)
			mustFail(t, fmt.Sprintf("header byte %d", i), got, plain, err, anyTyped...)
			if len(got) != 0 {
				t.Fatalf("header byte %d: plaintext returned", i)
			}
		}
	})
	t.Run("flip body and padding", func(t *testing.T) {
		for _, pos := range []int{PartHeaderSize, PartHeaderSize + S + 16, len(stored) - int(padSize(size, S)) - 1, len(stored) - int(padSize(size, S)), len(stored) - 1} {
			ts := bytes.Clone(stored)
			ts[pos] ^= 1
			got, err := whole(ts, "b", "k", dek)
			mustFail(t, fmt.Sprintf("byte %d", pos), got, plain, err, ErrAuth)
		}
		// Non-zero padding: the last segment's plaintext is withheld.
		ts := bytes.Clone(stored)
		ts[len(ts)-1] = 1
		p, _ := openStoredPart(ts, dek, "b", "k", testUpload)
		got, err := partRange(p, ts, size-50, 50, 1<<20)
		mustFail(t, "padding in range", got, plain[size-50:], err, ErrAuth)
		if len(got) != 0 {
			t.Fatal("plaintext of the last segment returned before the padding check")
		}
	})
	t.Run("truncate", func(t *testing.T) {
		for _, cut := range []int{PartHeaderSize, PartHeaderSize + 1, PartHeaderSize + S + 16, len(stored) - int(padSize(size, S)), len(stored) - 1} {
			got, err := whole(stored[:cut], "b", "k", dek)
			mustFail(t, fmt.Sprintf("cut %d", cut), got, plain, err, ErrTruncated)
		}
		if _, err := ParsePartHeader(stored[:PartHeaderSize-1]); !errors.Is(err, ErrFormat) {
			t.Fatalf("short header: %v", err)
		}
	})
	t.Run("moved", func(t *testing.T) {
		for _, tc := range []struct{ bucket, key string }{{"b2", "k"}, {"b", "k2"}} {
			if _, err := whole(stored, tc.bucket, tc.key, dek); !errors.Is(err, ErrAuth) {
				t.Fatalf("%v: %v", tc, err)
			}
		}
		if _, err := whole(stored, "b", "k", newDEK(t)); !errors.Is(err, ErrAuth) {
			t.Fatalf("wrong dek: %v", err)
		}
		// Renumbered part (header claims part 4): the part key's AAD differs.
		ts := bytes.Clone(stored)
		ts[11] = 4
		if _, err := whole(ts, "b", "k", dek); !errors.Is(err, ErrAuth) {
			t.Fatalf("renumbered: %v", err)
		}
		// Another upload to the same path, or none: the part key is sealed
		// to its upload identity.
		other := bytes.Clone(testUpload)
		other[UploadIDSize-1] ^= 1
		for _, u := range [][]byte{other, nil, testUpload[:UploadIDSize-1], append(bytes.Clone(testUpload), 0)} {
			if _, err := openStoredPart(stored, dek, "b", "k", u); !errors.Is(err, ErrAuth) {
				t.Fatalf("upload %x: %v", u, err)
			}
		}
	})
	t.Run("swap segments and bodies", func(t *testing.T) {
		ts := bytes.Clone(stored)
		a := ts[PartHeaderSize : PartHeaderSize+S+16]
		b := bytes.Clone(ts[PartHeaderSize+S+16 : PartHeaderSize+2*(S+16)])
		copy(ts[PartHeaderSize+S+16:], a)
		copy(a, b)
		got, err := whole(ts, "b", "k", dek)
		mustFail(t, "swap segments", got, plain, err, ErrAuth)
		// Same header, body of another part with the same number and size.
		other := sealPart(t, dek, testKI, "b", "k", testUpload, 3, randBytes(22, size))
		ts = append(bytes.Clone(stored[:PartHeaderSize]), other[PartHeaderSize:]...)
		got, err = whole(ts, "b", "k", dek)
		mustFail(t, "swap body", got, plain, err, ErrAuth)
		if len(got) != 0 {
			t.Fatal("plaintext returned")
		}
	})
	t.Run("commitment", func(t *testing.T) {
		ph, _ := ParsePartHeader(stored)
		off := partFixedHead + 2 + len(ph.keyID) + 2 + len(ph.wrapped) + NonceSize + KeySize + TagSize
		ts := bytes.Clone(stored)
		ts[off] ^= 1
		if _, err := whole(ts, "b", "k", dek); !errors.Is(err, ErrCommitment) {
			t.Fatalf("got %v, want ErrCommitment", err)
		}
	})
}

// A multipart object: parts sealed independently (different data keys, as
// on different proxy instances, in any order), stored back to back; the
// plaintext size follows from the stored size and the part count alone.
func TestMultipartObject(t *testing.T) {
	sizes := []int{5<<20 + 1, 5 << 20, 0, 1, 3*S + 9}
	type inst struct {
		dek []byte
		ki  KeyInfo
	}
	insts := []inst{{newDEK(t), KeyInfo{KeyID: "key-a", Wrapped: []byte("wrapped-a")}}, {newDEK(t), KeyInfo{KeyID: "key-b", Wrapped: []byte("wrapped-b")}}}
	deks := map[string][]byte{"key-a": insts[0].dek, "key-b": insts[1].dek}
	obj, err := NewObject(insts[0].dek, insts[0].ki, "bk", "mp", LayoutMultipart, []byte(`{"size":"?"}`))
	if err != nil {
		t.Fatal(err)
	}
	plains := make([][]byte, len(sizes))
	stored := make([][]byte, len(sizes))
	for _, i := range []int{3, 0, 4, 2, 1} { // any order
		plains[i] = randBytes(uint64(100+i), sizes[i])
		in := insts[i%2]
		stored[i] = sealPart(t, in.dek, in.ki, "bk", "mp", testUpload, i+1, plains[i])
	}
	var all, want []byte
	for i := range sizes {
		all = append(all, stored[i]...)
		want = append(want, plains[i]...)
	}
	if p, err := MultipartPlaintextSize(int64(len(all)), len(sizes)); err != nil || p != int64(len(want)) {
		t.Fatalf("MultipartPlaintextSize = %d, %v; want %d", p, err, len(want))
	}
	// Header in metadata: opens with the first instance's key.
	h, err := ParseHeader(obj.HeaderValue())
	if err != nil || h.Layout() != LayoutMultipart {
		t.Fatalf("header: %v", err)
	}
	if _, err := Open(h, insts[0].dek, "bk", "mp"); err != nil {
		t.Fatal(err)
	}
	// Read the object back part by part from one stream, as a GET would.
	src := bytes.NewReader(all)
	var got []byte
	hdr := make([]byte, PartHeaderSize)
	for i := range sizes {
		if _, err := io.ReadFull(src, hdr); err != nil {
			t.Fatal(err)
		}
		ph, err := ParsePartHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if ph.PartNumber() != i+1 {
			t.Fatalf("part %d claims number %d", i+1, ph.PartNumber())
		}
		p, err := OpenPart(ph, deks[ph.KeyInfo().KeyID], "bk", "mp", testUpload)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p.DecryptReader(src, 0, ph.PlainLen()))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	if src.Len() != 0 || !bytes.Equal(got, want) {
		t.Fatalf("multipart read back: %d left, equal %v", src.Len(), bytes.Equal(got, want))
	}
}

func TestPartStoredRange(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(5, 5))
	for range 2000 {
		plain := rng.Int64N(MaxPartSize + 1)
		if rng.IntN(3) == 0 {
			plain = rng.Int64N(5 * S)
		}
		ph := &PartHeader{plainLen: plain, segSize: PartSegmentSize(plain)}
		off := rng.Int64N(plain + 1)
		n := rng.Int64N(plain - off + 1)
		o1, l1 := PartStoredRange(plain, off, n)
		o2, l2 := PartCipherRange(ph, off, n)
		if o1 != o2 || l1 != l2 {
			t.Fatalf("PartStoredRange(%d, %d, %d) = %d, %d; PartCipherRange %d, %d", plain, off, n, o1, l1, o2, l2)
		}
		if l1 > 0 && (o1 < PartHeaderSize || o1+l1 > PartCiphertextSize(plain)) {
			t.Fatalf("range %d+%d outside part of %d", o1, l1, PartCiphertextSize(plain))
		}
	}
	for _, p := range []int64{-1, MaxPartSize + 1} {
		if o, l := PartStoredRange(p, 0, 1); o != 0 || l != 0 {
			t.Fatalf("PartStoredRange(%d) = %d, %d", p, o, l)
		}
	}
}
