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

// BenchmarkCompressed: write and whole-read throughput of compressed bodies
// and their stored/plaintext ratio, per algorithm and block size, on JSON
// lines (compressible) and random bytes (stored raw): the figures behind
// DefaultBlockSize.
func BenchmarkCompressed(b *testing.B) {
	const size = 16 << 20
	dek := bytes.Repeat([]byte{7}, KeySize)
	for _, corpus := range []string{"jsonl", "random"} {
		plain := randBytes(1, size)
		if corpus == "jsonl" {
			plain = compressible(1, size)
		}
		for _, alg := range []Algorithm{AlgS2, AlgZstd} {
			for _, bs := range []int{64 << 10, 256 << 10, 1 << 20} {
				comp := Compression{Algorithm: alg, BlockSize: bs}
				meta := (&Meta{Size: size, Compression: &comp}).Encode()
				seal := func() (*Object, []byte) {
					o, err := Config{Flags: FlagCompressed}.NewObject(dek, testKI, "b", "k", LayoutSingle, meta)
					if err != nil {
						b.Fatal(err)
					}
					var buf bytes.Buffer
					if _, err := buf.ReadFrom(o.EncryptCompressedReader(bytes.NewReader(plain))); err != nil {
						b.Fatal(err)
					}
					return o, buf.Bytes()
				}
				name := fmt.Sprintf("%s/%s/%dK", corpus, alg, bs>>10)
				b.Run("write/"+name, func(b *testing.B) {
					b.SetBytes(size)
					var stored int
					for b.Loop() {
						o, body := seal()
						o.Close()
						stored = len(body)
					}
					b.ReportMetric(float64(stored)/size, "stored/plain")
				})
				b.Run("read/"+name, func(b *testing.B) {
					w, body := seal()
					h, _ := ParseHeader(w.HeaderValue())
					w.Close()
					o, err := Open(h, dek, "b", "k")
					if err != nil {
						b.Fatal(err)
					}
					defer o.Close()
					b.SetBytes(size)
					for b.Loop() {
						if n, err := io.Copy(io.Discard, o.DecryptCompressedReader(bytes.NewReader(body), nil, 0, size)); err != nil || n != size {
							b.Fatal(n, err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkSaving: the adaptive check on one default block, on random
// bytes (what restic packs and rclone crypt uploads look like: it must
// cost little beside encrypting the object) and on JSON lines.
func BenchmarkSaving(b *testing.B) {
	for _, corpus := range []string{"random", "jsonl"} {
		block := randBytes(5, DefaultBlockSize)
		if corpus == "jsonl" {
			block = compressible(5, DefaultBlockSize)
		}
		for _, alg := range []Algorithm{AlgS2, AlgZstd} {
			b.Run(corpus+"/"+string(alg), func(b *testing.B) {
				b.SetBytes(DefaultBlockSize)
				var s float64
				for b.Loop() {
					var err error
					if s, err = Saving(alg, block); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(s, "saving")
			})
		}
	}
}
