package envelope

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

const benchSize = 64 << 20

// drain reads r to the end through a buffer of size buf (0: io.Copy, which
// uses the reader's WriteTo).
func drain(b *testing.B, r io.Reader, buf []byte) int64 {
	var n int64
	var err error
	if buf == nil {
		n, err = io.Copy(io.Discard, r)
	} else {
		n, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
	}
	if err != nil {
		b.Fatal(err)
	}
	return n
}

var benchBufs = []struct {
	name string
	size int
}{{"WriteTo", 0}, {"Read1MiB", 1 << 20}, {"Read32KiB", 32 << 10}}

func BenchmarkEncrypt(b *testing.B) {
	dek := newDEK(b)
	plain := randBytes(1, benchSize)
	for _, bb := range benchBufs {
		b.Run(bb.name, func(b *testing.B) {
			var buf []byte
			if bb.size > 0 {
				buf = make([]byte, bb.size)
			}
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				o, err := NewObject(dek, testKI, "bucket", "key", LayoutSingle, nil)
				if err != nil {
					b.Fatal(err)
				}
				if n := drain(b, o.EncryptReader(bytes.NewReader(plain), benchSize), buf); n != CiphertextSize(benchSize) {
					b.Fatalf("%d bytes", n)
				}
				o.Close()
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	dek := newDEK(b)
	plain := randBytes(1, benchSize)
	o, body := sealSingle(b, dek, "bucket", "key", plain)
	h, _ := ParseHeader(o.HeaderValue())
	for _, bb := range benchBufs {
		b.Run(bb.name, func(b *testing.B) {
			var buf []byte
			if bb.size > 0 {
				buf = make([]byte, bb.size)
			}
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				o, err := Open(h, dek, "bucket", "key")
				if err != nil {
					b.Fatal(err)
				}
				if n := drain(b, o.DecryptReader(bytes.NewReader(body), benchSize, 0, benchSize), buf); n != benchSize {
					b.Fatalf("%d bytes", n)
				}
				o.Close()
			}
		})
	}
}

// Parts with large segments (a 5 GiB part uses 8 MiB segments); 256 MiB
// gives 256 KiB segments.
func BenchmarkPart(b *testing.B) {
	dek := newDEK(b)
	for _, size := range []int64{benchSize, 256 << 20} {
		b.Run(fmt.Sprintf("Encrypt%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				p, err := NewPart(dek, testKI, "bucket", "key", testUpload, 1, size)
				if err != nil {
					b.Fatal(err)
				}
				drain(b, p.EncryptReader(&patReader{n: size}), nil)
				p.Close()
			}
		})
	}
}

// BenchmarkGCM is the floor: raw AES-256-GCM sealing of 64 KiB segments in
// place, without the stream plumbing.
func BenchmarkGCM(b *testing.B) {
	g, _ := newGCM(newDEK(b))
	buf := make([]byte, S+TagSize)
	var nonce [NonceSize]byte
	b.SetBytes(S)
	for b.Loop() {
		g.Seal(buf[:0], nonce[:], buf[:S], nil)
	}
}

func BenchmarkOpenHeader(b *testing.B) {
	dek := newDEK(b)
	o, _ := NewObject(dek, testKI, "bucket", "key", LayoutSingle, make([]byte, 300))
	hv := o.HeaderValue()
	b.ReportAllocs()
	for b.Loop() {
		h, err := ParseHeader(hv)
		if err != nil {
			b.Fatal(err)
		}
		o, err := Open(h, dek, "bucket", "key")
		if err != nil {
			b.Fatal(err)
		}
		o.Close()
	}
}
