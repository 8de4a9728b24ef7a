package envelope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"
)

// newDEK returns a fresh random data key (generated at test time).
func newDEK(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

var testKI = KeyInfo{KeyID: "arn:aws:kms:eu-west-1:111122223333:key/test", Wrapped: bytes.Repeat([]byte{0xAB}, 184)}

// randBytes returns n deterministic pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	c := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	_, _ = c.Read(b)
	return b
}

// pattern is a generated plaintext source: byte i of stream seed is
// patTable[(i+seed) % len(patTable)], a pseudo-random table whose length is
// prime to every segment size. It lets tests stream gigabytes without
// holding them, at memcpy speed.
var patTable = randBytes(77, 1<<20+7)

func patSlice(seed, pos int64, n int) []byte {
	i := (pos + seed) % int64(len(patTable))
	return patTable[i:min(int(i)+n, len(patTable))]
}

type patReader struct {
	seed, pos, n int64
}

func (r *patReader) Read(p []byte) (int, error) {
	if r.pos >= r.n {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n-r.pos {
		p = p[:r.n-r.pos]
	}
	n := 0
	for n < len(p) {
		n += copy(p[n:], patSlice(r.seed, r.pos+int64(n), len(p)-n))
	}
	r.pos += int64(n)
	return n, nil
}

// patChecker is a Writer that checks what it receives against the pattern
// starting at pos.
type patChecker struct {
	seed, pos int64
	bad       int64 // first mismatched chunk position, -1 if none
}

func (w *patChecker) Write(p []byte) (int, error) {
	for done := 0; done < len(p); {
		want := patSlice(w.seed, w.pos+int64(done), len(p)-done)
		if !bytes.Equal(p[done:done+len(want)], want) && w.bad < 0 {
			w.bad = w.pos + int64(done)
		}
		done += len(want)
	}
	w.pos += int64(len(p))
	return len(p), nil
}

// readAllBuf reads r to the end with reads of size chunk, returning what was
// read and the terminal error (nil at clean EOF).
func readAllBuf(r io.Reader, chunk int) ([]byte, error) {
	var out []byte
	buf := make([]byte, chunk)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// sealSingle encrypts plain as a single-layout object.
func sealSingle(t testing.TB, dek []byte, bucket, key string, plain []byte) (*Object, []byte) {
	t.Helper()
	o, err := NewObject(dek, testKI, bucket, key, LayoutSingle, []byte(`{"m":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(o.EncryptReader(bytes.NewReader(plain), int64(len(plain))))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(body)) != CiphertextSize(int64(len(plain))) {
		t.Fatalf("body %d bytes, CiphertextSize %d", len(body), CiphertextSize(int64(len(plain))))
	}
	return o, body
}

// decryptRange decrypts [off, off+n) from the stored body, slicing it as the
// proxy's ranged GET would, with reads of size chunk.
func decryptRange(o *Object, body []byte, plainLen, off, n int64, chunk int) ([]byte, error) {
	cOff, cLen := CipherRange(plainLen, off, n)
	end := min(cOff+cLen, int64(len(body)))
	src := bytes.NewReader(body[min(cOff, end):end])
	return readAllBuf(o.DecryptReader(src, plainLen, off, n), chunk)
}

// mustFail checks that err is one of want, and that got is a prefix of
// plain ending on a segment boundary (no tampered plaintext leaks).
func mustFail(t *testing.T, what string, got, plain []byte, err error, want ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	ok := false
	for _, w := range want {
		ok = ok || errors.Is(err, w)
	}
	if !ok {
		t.Fatalf("%s: error %v, want one of %v", what, err, want)
	}
	if !bytes.HasPrefix(plain, got) {
		t.Fatalf("%s: returned %d bytes that are not the original plaintext", what, len(got))
	}
}
