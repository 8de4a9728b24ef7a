package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

// writeToAll drains r through its WriteTo (the batched path the proxy
// uses), returning what was written and the error.
func writeToAll(r io.Reader) ([]byte, error) {
	var b bytes.Buffer
	_, err := r.(io.WriterTo).WriteTo(&b)
	return b.Bytes(), err
}

// Ranges read through WriteTo, which opens several segments per batch,
// match the plaintext wherever they start and end relative to batches.
func TestWriteToRanges(t *testing.T) {
	dek := newDEK(t)
	batchSegs := int64(BatchSize / S)
	size := int64(3*batchSegs*S + 1234) // several batches and a short final segment
	plain := randBytes(5, int(size))
	o, body := sealSingle(t, dek, "b", "k", plain)
	rng := mrand.New(mrand.NewPCG(7, 7))
	cases := [][2]int64{{0, size}, {0, 1}, {size - 1, 1}, {S - 1, 2}, {batchSegs*S - 1, 2}, {batchSegs * S, S}, {1, size - 1}}
	for range 200 {
		off := rng.Int64N(size)
		cases = append(cases, [2]int64{off, rng.Int64N(size-off) + 1})
	}
	for _, c := range cases {
		off, n := c[0], c[1]
		cOff, cLen := CipherRange(size, off, n)
		got, err := writeToAll(o.DecryptReader(bytes.NewReader(body[cOff:cOff+cLen]), size, off, n))
		if err != nil || !bytes.Equal(got, plain[off:off+n]) {
			t.Fatalf("range [%d,+%d): err %v, %d bytes, equal %v", off, n, err, len(got), bytes.Equal(got, plain[off:off+n]))
		}
	}
}

// A flipped bit anywhere fails WriteTo with ErrAuth, and nothing of the
// batch holding the tampered segment, nor after it, is written.
func TestWriteToTamper(t *testing.T) {
	dek := newDEK(t)
	batchSegs := BatchSize / S
	size := 2*batchSegs*S + 500
	plain := randBytes(6, size)
	o, body := sealSingle(t, dek, "b", "k", plain)
	rng := mrand.New(mrand.NewPCG(8, 8))
	for range 100 {
		pos := rng.IntN(len(body))
		tb := bytes.Clone(body)
		tb[pos] ^= 1 << rng.IntN(8)
		got, err := writeToAll(o.DecryptReader(bytes.NewReader(tb), int64(size), 0, int64(size)))
		mustFail(t, fmt.Sprintf("flip at %d", pos), got, plain, err, ErrAuth)
		batchStart := pos / (S + TagSize) / batchSegs * batchSegs * S
		if len(got) > batchStart {
			t.Fatalf("flip at %d: %d bytes written, batch starts at %d", pos, len(got), batchStart)
		}
	}
	for _, cut := range []int{0, S, S + TagSize, batchSegs * (S + TagSize), len(body) - 1} {
		got, err := writeToAll(o.DecryptReader(bytes.NewReader(body[:cut]), int64(size), 0, int64(size)))
		mustFail(t, fmt.Sprintf("cut at %d", cut), got, plain, err, ErrTruncated)
	}
}

// Parts (with padding after the final segment) through WriteTo: whole,
// ranged, and with the padding tampered.
func TestWriteToPartPadding(t *testing.T) {
	dek := newDEK(t)
	size := int64(BatchSize + 3*S + 10)
	plain := randBytes(9, int(size))
	p, err := NewPart(dek, testKI, "b", "k", testUpload, 3, size)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := writeToAll(p.EncryptReader(bytes.NewReader(plain)))
	if err != nil {
		t.Fatal(err)
	}
	q, err := openStoredPart(stored[:PartHeaderSize], dek, "b", "k", testUpload)
	if err != nil {
		t.Fatal(err)
	}
	got, err := writeToAll(q.DecryptReader(bytes.NewReader(stored[PartHeaderSize:]), 0, size))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("whole part: err %v, equal %v", err, bytes.Equal(got, plain))
	}
	bad := bytes.Clone(stored)
	bad[len(bad)-1] = 1 // the padding
	got, err = writeToAll(q.DecryptReader(bytes.NewReader(bad[PartHeaderSize:]), 0, size))
	if !errors.Is(err, ErrAuth) || int64(len(got)) >= size-int64(S) {
		t.Fatalf("tampered padding: err %v, %d bytes written", err, len(got))
	}
}

// A source shorter or longer than declared fails the batched encryption,
// and the error says by how much it was short.
func TestWriteToEncryptSizeMismatch(t *testing.T) {
	dek := newDEK(t)
	size := int64(BatchSize + S + 5)
	plain := randBytes(10, int(size))
	encrypt := func(src []byte) error {
		o, err := NewObject(dek, testKI, "b", "k", LayoutSingle, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		_, err = writeToAll(o.EncryptReader(bytes.NewReader(src), size))
		return err
	}
	if err := encrypt(plain[:size-100]); !errors.Is(err, ErrSizeMismatch) || !strings.Contains(err.Error(), "ended 100 bytes early") {
		t.Fatalf("short source: %v", err)
	}
	if err := encrypt(append(bytes.Clone(plain), 'x')); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("long source: %v", err)
	}
}

// Empty and tiny streams through the batched WriteTo in both directions.
func TestWriteToSmallSizes(t *testing.T) {
	dek := newDEK(t)
	for _, size := range []int{0, 1, S - 1, S, S + 1, BatchSize, BatchSize + 1} {
		plain := randBytes(uint64(size), size)
		o, err := NewObject(dek, testKI, "b", "k", LayoutSingle, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := writeToAll(o.EncryptReader(bytes.NewReader(plain), int64(size)))
		if err != nil || int64(len(body)) != CiphertextSize(int64(size)) {
			t.Fatalf("size %d: encrypt: %v, %d bytes", size, err, len(body))
		}
		got, err := writeToAll(o.DecryptReader(bytes.NewReader(body), int64(size), 0, int64(size)))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: decrypt: %v", size, err)
		}
		o.Close()
	}
}

// A stream takes a batch no larger than it needs (in powers of two).
func TestBatchSizing(t *testing.T) {
	full := BatchSize / S
	for _, c := range []struct {
		segments int64
		want     int
	}{{0, 1}, {1, 1}, {2, 2}, {3, 4}, {int64(full) - 1, full}, {int64(full), full}, {1000, full}} {
		b := getBatch(S, c.segments)
		if b.k != c.want || len(b.sealed) != b.k*(S+TagSize) || len(b.plain) != b.k*S {
			t.Errorf("%d segments: batch of %d (%d/%d bytes), want %d", c.segments, b.k, len(b.sealed), len(b.plain), c.want)
		}
		putBatch(S, b)
	}
	if b := getBatch(BatchSize*2, 5); b.k != 1 {
		t.Errorf("segments larger than a batch: k = %d", b.k)
	}
}
