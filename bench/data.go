package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// Object bodies are generated, never held in memory: byte i of the object
// with seed s is byte i%8 (little endian) of word(s, i/8), a splitmix64
// output. The stream is random-access, so a part or a range of an object
// is generated (and checked) on its own, at several GB/s per core.

const golden = 0x9e3779b97f4a7c15

func word(seed, i uint64) uint64 {
	z := seed + (i+1)*golden
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// fill writes the bytes [off, off+len(p)) of the object with seed into p.
func fill(seed uint64, off int64, p []byte) {
	w := uint64(off) / 8
	if skip := int(off % 8); skip != 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], word(seed, w))
		n := copy(p, b[skip:])
		p = p[n:]
		w++
	}
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, word(seed, w))
		p = p[8:]
		w++
	}
	if len(p) > 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], word(seed, w))
		copy(p, b[:])
	}
}

// genReader reads the bytes [off, end) of the object with seed.
type genReader struct {
	seed     uint64
	off, end int64
}

// newGenReader returns a reader of size bytes of the object with seed,
// starting at off.
func newGenReader(seed uint64, off, size int64) *genReader {
	return &genReader{seed: seed, off: off, end: off + size}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.end {
		return 0, io.EOF
	}
	if rest := g.end - g.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	fill(g.seed, g.off, p)
	g.off += int64(len(p))
	return len(p), nil
}

// errMismatch reports a body that differs from the generated object.
var errMismatch = errors.New("bench: body differs from the data written")

// sink counts (and optionally checks) a response body.
type sink struct {
	seed   uint64
	off    int64 // offset in the object of the next byte
	n      int64
	verify bool
	want   []byte
}

// Write implements io.Writer; it does not implement io.ReaderFrom, so that
// io.CopyBuffer reads with the caller's (large) buffer.
func (s *sink) Write(p []byte) (int, error) {
	if s.verify {
		if cap(s.want) < len(p) {
			s.want = make([]byte, len(p))
		}
		want := s.want[:len(p)]
		fill(s.seed, s.off, want)
		if !bytes.Equal(p, want) {
			return 0, errMismatch
		}
	}
	s.off += int64(len(p))
	s.n += int64(len(p))
	return len(p), nil
}
