package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Plaintext is structured text: fixed-length lines, each starting with a
// 16-hex-digit value unique to (seed, line), so that any 16-byte window of
// it is recognisable if it leaks into what the store holds, and so that
// reordered, dropped or repeated segments change the bytes. The line length
// (61) is prime, so lines straddle every 64 KiB segment boundary at a
// different phase.
const lineLen = 61

const lineText = " s3seal end-to-end: the quick brown fox jump\n" // 45 bytes

func init() {
	if 16+len(lineText) != lineLen {
		panic("lineLen")
	}
}

// genReader is a seekable, deterministic plaintext stream of a given size:
// byte i depends only on the seed and i. It never holds more than a line.
type genReader struct {
	seed uint64
	size int64
	off  int64
	line [lineLen]byte
	num  int64 // line number held in line, -1 if none
}

func newGen(name string, size int64) *genReader {
	sum := sha256.Sum256([]byte(name))
	return &genReader{seed: binary.LittleEndian.Uint64(sum[:8]), size: size, num: -1}
}

const hexDigits = "0123456789abcdef"

func (g *genReader) fill(n int64) {
	if g.num == n {
		return
	}
	v := (uint64(n) + 1) * 0x9E3779B97F4A7C15
	v ^= g.seed
	v ^= v >> 29
	for i := 15; i >= 0; i-- {
		g.line[i] = hexDigits[v&15]
		v >>= 4
	}
	copy(g.line[16:], lineText)
	g.num = n
}

func (g *genReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= g.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < g.size {
		g.fill(off / lineLen)
		start := off % lineLen
		c := copy(p[n:], g.line[start:])
		if rem := g.size - off; int64(c) > rem {
			c = int(rem)
		}
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (g *genReader) Read(p []byte) (int, error) {
	n, err := g.ReadAt(p, g.off)
	g.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (g *genReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += g.off
	case io.SeekEnd:
		offset += g.size
	default:
		return 0, errors.New("genReader: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("genReader: negative position")
	}
	g.off = offset
	return offset, nil
}

// plaintext returns the whole plaintext for (name, size).
func plaintext(name string, size int) []byte {
	b := make([]byte, size)
	if _, err := newGen(name, int64(size)).ReadAt(b, 0); err != nil && err != io.EOF {
		panic(err)
	}
	return b
}

// writePlainFile writes the plaintext to a file under dir and returns its path.
func writePlainFile(t *testing.T, dir, name string, plain []byte) string {
	t.Helper()
	p := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
	if err := os.WriteFile(p, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// findPlaintextWindow looks for any 16-byte window of plain inside stored.
// Plaintext bytes are printable ASCII or '\n', so only runs of 16 such
// bytes in stored can be windows; each (rare in ciphertext) is looked up in
// plain.
func findPlaintextWindow(stored, plain []byte) (int, []byte, bool) {
	const w = 16
	if len(plain) < w {
		// Too short for a window (a few bytes occur in any ciphertext by
		// chance): only the plaintext stored as is counts.
		if len(plain) > 0 && bytes.Equal(stored, plain) {
			return 0, plain, true
		}
		return 0, nil, false
	}
	run := 0
	for i, c := range stored {
		if (c >= 0x20 && c < 0x7f) || c == '\n' {
			run++
		} else {
			run = 0
			continue
		}
		if run >= w {
			win := stored[i-w+1 : i+1]
			if bytes.Contains(plain, win) {
				return i - w + 1, win, true
			}
		}
	}
	return 0, nil, false
}

func TestFindPlaintextWindow(t *testing.T) {
	plain := plaintext("window-test", 100_000)
	noise := bytes.Repeat([]byte{0x00, 0xff, 0x80}, 40_000)
	if _, _, found := findPlaintextWindow(noise, plain); found {
		t.Fatal("found plaintext in noise")
	}
	leaky := append(append([]byte{}, noise[:5000]...), plain[70_001:70_017]...)
	leaky = append(leaky, noise[:5000]...)
	off, _, found := findPlaintextWindow(leaky, plain)
	if !found || off != 5000 {
		t.Fatalf("leak not found: %v at %d", found, off)
	}
	// 15 bytes are not a window.
	short := append(append([]byte{}, noise[:10]...), plain[100:115]...)
	short = append(short, 0)
	if _, _, found := findPlaintextWindow(short, plain); found {
		t.Fatal("15-byte run reported")
	}
}

func TestGenReader(t *testing.T) {
	g := newGen("gen", 1000)
	all, err := io.ReadAll(g)
	if err != nil || len(all) != 1000 {
		t.Fatalf("ReadAll: %d, %v", len(all), err)
	}
	if !bytes.Equal(all, plaintext("gen", 1000)) {
		t.Fatal("Read and ReadAt differ")
	}
	if bytes.Equal(all, plaintext("gen2", 1000)) {
		t.Fatal("seed has no effect")
	}
	if _, err := g.Seek(-10, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(g)
	if !bytes.Equal(tail, all[990:]) {
		t.Fatal("Seek")
	}
	// Lines are unique: a segment-sized block never repeats.
	big := plaintext("gen", 3<<16)
	if bytes.Equal(big[:1<<16], big[1<<16:2<<16]) {
		t.Fatal("segments repeat")
	}
}

// byteRange is an HTTP Range header value with what it selects of an
// object of a given size.
type byteRange struct {
	header     string
	start, end int64 // inclusive
}

// parseRange resolves a single "bytes=a-b", "bytes=a-" or "bytes=-n" for an
// object of size n, the way S3 does (end clamped to the last byte).
func parseRange(h string, size int64) (byteRange, bool) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return byteRange{}, false
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return byteRange{}, false
	}
	r := byteRange{header: h}
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 || size == 0 {
			return byteRange{}, false
		}
		r.start = max(size-n, 0)
		r.end = size - 1
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s >= size {
			return byteRange{}, false
		}
		r.start, r.end = s, size-1
		if b != "" {
			e, err := strconv.ParseInt(b, 10, 64)
			if err != nil || e < s {
				return byteRange{}, false
			}
			r.end = min(e, size-1)
		}
	}
	return r, true
}

func (r byteRange) contentRange(size int64) string {
	return fmt.Sprintf("bytes %d-%d/%d", r.start, r.end, size)
}

// segmentRanges are ranges around the 64 KiB segment boundaries.
var segmentRanges = []string{
	"bytes=0-0",
	"bytes=0-65535",
	"bytes=65535-65536",
	"bytes=65535-65535",
	"bytes=65536-",
	"bytes=65536-65536",
	"bytes=65536-131071",
	"bytes=131071-131072",
	"bytes=1-131073",
	"bytes=-1",
	"bytes=-65536",
	"bytes=-65537",
	"bytes=1048575-",
	"bytes=1000000-5000000",
	"bytes=0-",
}

func bytesReader(b []byte) io.ReadSeeker { return bytes.NewReader(b) }

// readAllLimited reads r to EOF, failing past limit bytes.
func readAllLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("body longer than %d bytes", limit)
	}
	return b, err
}
