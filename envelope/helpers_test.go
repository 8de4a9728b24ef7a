package envelope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
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

// bodyFetcher is a HeaderFetcher over a whole stored multipart body.
func bodyFetcher(body []byte) HeaderFetcher {
	return func(off int64) (*PartHeader, error) {
		if off < 0 || off+PartHeaderSize > int64(len(body)) {
			return nil, fmt.Errorf("%w: part header at %d of a %d-byte body", ErrTruncated, off, len(body))
		}
		return ParsePartHeader(body[off:])
	}
}

// openWith is a PartOpener that finds each part's data key by its key id
// and opens the part for (bucket, key, upload).
func openWith(deks map[string][]byte, bucket, key string, upload []byte) PartOpener {
	return func(ph *PartHeader) (*Part, error) {
		return OpenPart(ph, deks[ph.KeyInfo().KeyID], bucket, key, upload)
	}
}

// readMultipart reads plaintext [off, off+n) of the multipart object stored
// as body, as the proxy's ranged GET does: it fetches exactly the stored
// bytes pm.FetchRange names (and the first part's header apart when they do
// not include it) and drains MultipartReader with reads of size chunk, or
// through its WriteTo when chunk is 0. Every fetched byte must be consumed.
//
// A range that starts or ends inside a compressed part first reads that
// part's header and sealed block index and opens them (PartMap.NeedIndexes).
func readMultipart(body []byte, pm *PartMap, off, n int64, open PartOpener, chunk int) ([]byte, error) {
	ix, err := readIndexes(body, pm, off, n, open)
	if err != nil {
		return nil, err
	}
	f, err := pm.FetchRangeIndexed(off, n, ix)
	if err != nil {
		return nil, err
	}
	if f.From < 0 || f.From > f.To || f.To > int64(len(body)) {
		return nil, fmt.Errorf("fetch [%d, %d) outside a %d-byte body", f.From, f.To, len(body))
	}
	var first *PartHeader
	if !f.HeaderInline {
		if first, err = bodyFetcher(body)(f.FirstOffset); err != nil {
			return nil, err
		}
	}
	src := bytes.NewReader(body[f.From:f.To])
	r := MultipartReaderIndexed(src, pm, first, off, n, open, ix)
	defer r.(io.Closer).Close()
	var got []byte
	if chunk == 0 {
		got, err = writeToAll(r)
	} else {
		got, err = readAllBuf(r, chunk)
	}
	if err == nil && src.Len() != 0 {
		err = fmt.Errorf("%d fetched bytes left unread", src.Len())
	}
	return got, err
}

// readIndexes opens the block indexes of the compressed parts a read of
// [off, off+n) starts or ends inside, as the proxy does before its ranged
// read: the part's header, checked against the map, the part opened, its
// sealed index fetched and opened.
func readIndexes(body []byte, pm *PartMap, off, n int64, open PartOpener) (PartIndexes, error) {
	need, err := pm.NeedIndexes(off, n)
	if err != nil || len(need) == 0 {
		return nil, err
	}
	ix := PartIndexes{}
	for _, i := range need {
		_, _, _, start := pm.Part(i)
		ph, err := bodyFetcher(body)(start)
		if err != nil {
			return nil, err
		}
		if err := pm.Check(i, ph); err != nil {
			return nil, err
		}
		p, err := open(ph)
		if err != nil {
			return nil, err
		}
		ioff, in, err := pm.IndexRange(i)
		if err != nil {
			p.Close()
			return nil, err
		}
		if ioff < 0 || ioff+in > int64(len(body)) {
			p.Close()
			return nil, fmt.Errorf("index [%d, +%d) outside a %d-byte body", ioff, in, len(body))
		}
		idx, err := p.OpenIndex(body[ioff : ioff+in])
		p.Close()
		if err != nil {
			return nil, err
		}
		ix[i] = idx
	}
	return ix, nil
}
