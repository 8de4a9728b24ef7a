package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

type chunkedVector struct {
	AccessKeyID     string      `json:"access_key_id"`
	SecretAccessKey string      `json:"secret_access_key"`
	Region          string      `json:"region"`
	Service         string      `json:"service"`
	Date            string      `json:"date"`
	Method          string      `json:"method"`
	Path            string      `json:"path"`
	Headers         [][2]string `json:"headers"`
	PayloadHash     string      `json:"payload_hash"`
	Authorization   string      `json:"authorization"`
	SeedSignature   string      `json:"seed_signature"`
	Chunks          []struct {
		Size      int    `json:"size"`
		Byte      string `json:"byte"`
		Signature string `json:"signature"`
	} `json:"chunks"`
	Trailers         [][2]string `json:"trailers"`
	TrailerHash      string      `json:"trailer_hash"`
	TrailerSignature string      `json:"trailer_signature"`
}

func loadChunkedVector(t *testing.T) chunkedVector {
	t.Helper()
	b, err := os.ReadFile("../testdata/sigv4/aws-c-auth/chunked.json")
	if err != nil {
		t.Fatal(err)
	}
	var v chunkedVector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestChunkedVector verifies the S3 documentation's aws-chunked example
// (as asserted by aws-c-auth): seed signature, three chunk signatures, and
// the trailer signature chained after them.
func TestChunkedVector(t *testing.T) {
	vec := loadChunkedVector(t)
	now, err := http.ParseTime(vec.Date)
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{Method: vec.Method, RawPath: vec.Path, Header: http.Header{}}
	for _, h := range vec.Headers {
		if strings.EqualFold(h[0], "host") {
			r.Host = h[1]
			continue
		}
		r.Header.Add(h[0], h[1])
	}
	r.Header.Set("X-Amz-Content-Sha256", vec.PayloadHash)
	r.Header.Set("X-Amz-Date", formatAmzDate(now))
	r.Header.Set("Authorization", vec.Authorization)
	v := &Verifier{
		Lookup: func(ak string) (string, bool) { return vec.SecretAccessKey, ak == vec.AccessKeyID },
		Region: vec.Region,
		Now:    func() time.Time { return now.Add(time.Minute) },
	}
	a, err := v.Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if a.Signature != vec.SeedSignature || a.PayloadHash != StreamingPayload {
		t.Fatalf("auth %+v", a)
	}

	var body, payload []byte
	for _, c := range vec.Chunks {
		data := bytes.Repeat([]byte(c.Byte), c.Size)
		payload = append(payload, data...)
		body = fmt.Appendf(body, "%x;chunk-signature=%s\r\n", c.Size, c.Signature)
		if c.Size > 0 {
			body = append(body, data...)
			body = append(body, "\r\n"...)
		}
	}
	plain := append(bytes.Clone(body), "\r\n"...)
	if cl, _ := strconv.Atoi(r.Header.Get("Content-Length")); cl != len(plain) {
		t.Fatalf("encoded length %d, Content-Length %d", len(plain), cl)
	}
	dl, _ := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	if got := ChunkedLength(dl, 65536, true, ""); got != int64(len(plain)) {
		t.Errorf("ChunkedLength %d, want %d", got, len(plain))
	}
	readAll := func(a *Auth, body []byte) ([]byte, io.Reader, error) {
		rd, err := a.Body(bytes.NewReader(body), dl)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rd)
		return got, rd, err
	}
	got, _, err := readAll(a, plain)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}

	// Our encoder produces the same bytes from the same seed.
	enc, _ := newChunkEncoder(bytes.NewReader(payload), dl, 65536, "")
	vectorSigning(enc, a)
	encoded, err := io.ReadAll(enc)
	if err != nil || !bytes.Equal(encoded, plain) {
		t.Fatalf("encoder output differs (%d bytes, %v)", len(encoded), err)
	}

	// The trailer, signed after the final chunk.
	var canon []byte
	withTrailer := bytes.Clone(body)
	at := *a
	at.PayloadHash = StreamingPayloadTrailer
	for _, tr := range vec.Trailers {
		at.Trailers = append(at.Trailers, tr[0])
		canon = append(canon, tr[0]+":"+tr[1]+"\n"...)
		withTrailer = append(withTrailer, tr[0]+":"+tr[1]+"\r\n"...)
	}
	if sum := sha256.Sum256(canon); hex.EncodeToString(sum[:]) != vec.TrailerHash {
		t.Fatalf("trailer hash %x, want %s", sum, vec.TrailerHash)
	}
	withTrailer = append(withTrailer, "x-amz-trailer-signature:"+vec.TrailerSignature+"\r\n\r\n"...)
	got, rd, err := readAll(&at, withTrailer)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}
	if tr := rd.(TrailerReader).Trailer(); tr.Get("second") != "2nd" || len(tr) != 3 {
		t.Errorf("trailer %v", tr)
	}
	// The "name:value\n\r\n" line form minio-go sends is the same trailer.
	alt := bytes.ReplaceAll(withTrailer, []byte("1st\r\n"), []byte("1st\n\r\n"))
	alt = bytes.ReplaceAll(alt, []byte("3rd\r\n"), []byte("3rd\n\r\n"))
	if got, _, err := readAll(&at, alt); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("trailer lines ending in \\n\\r\\n: %d bytes, %v", len(got), err)
	}
	// The same, arriving one line per read (the read buffer refills between
	// a line and the CRLF after it).
	lr, err := at.Body(&lineReader{alt}, dl)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(lr); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("line by line: %d bytes, %v", len(got), err)
	}
	// One byte changed in the trailer.
	bad := bytes.Replace(withTrailer, []byte("third:3rd"), []byte("third:3rD"), 1)
	if _, _, err := readAll(&at, bad); !errors.Is(err, ErrTrailerSignature) {
		t.Errorf("tampered trailer: %v", err)
	}
	// One byte changed in the first chunk.
	bad = bytes.Clone(plain)
	bad[200] = 'b'
	if _, _, err := readAll(a, bad); !errors.Is(err, ErrChunkSignature) {
		t.Errorf("tampered chunk: %v", err)
	}
}

// vectorSigning turns e into a signing encoder chained from a's seed.
func vectorSigning(e *ChunkEncoder, a *Auth) {
	e.signed = true
	e.mac = hmac.New(sha256.New, a.key[:])
	e.prefix = chunkAlgorithm + "\n" + a.amzDate + "\n" + a.scope.String() + "\n"
	e.tprefix = trailerAlgorithm + "\n" + a.amzDate + "\n" + a.scope.String() + "\n"
	e.prev = a.Signature
}

type streamMode struct {
	name     string
	signed   bool
	checksum string
}

var streamModes = []streamMode{
	{"signed", true, ""},
	{"signed-crc32", true, "x-amz-checksum-crc32"},
	{"signed-crc32c", true, "x-amz-checksum-crc32c"},
	{"signed-crc64nvme", true, "x-amz-checksum-crc64nvme"},
	{"signed-sha1", true, "x-amz-checksum-sha1"},
	{"signed-sha256", true, "x-amz-checksum-sha256"},
	{"unsigned", false, ""},
	{"unsigned-crc32", false, "x-amz-checksum-crc32"},
	{"unsigned-crc32c", false, "x-amz-checksum-crc32c"},
	{"unsigned-crc64nvme", false, "x-amz-checksum-crc64nvme"},
	{"unsigned-sha1", false, "x-amz-checksum-sha1"},
	{"unsigned-sha256", false, "x-amz-checksum-sha256"},
}

// streamRequest signs a streaming upload of payload and returns the request
// and its encoded body.
func (f *fixture) streamRequest(t testing.TB, m streamMode, payload []byte, chunkSize int) (*Request, []byte) {
	t.Helper()
	return f.streamRequestWith(t, m, payload, chunkSize, nil)
}

func (f *fixture) streamRequestWith(t testing.TB, m streamMode, payload []byte, chunkSize int, extra http.Header) (*Request, []byte) {
	t.Helper()
	r := baseRequest()
	for k, v := range extra {
		r.Header[k] = v
	}
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(payload)))
	if m.checksum != "" {
		r.Header.Set("X-Amz-Trailer", m.checksum)
	}
	r.Header.Set("Content-Length", strconv.FormatInt(ChunkedLength(int64(len(payload)), chunkSize, m.signed, m.checksum), 10))
	var h http.Header
	var enc *ChunkEncoder
	var err error
	if m.signed {
		h, enc, err = f.signer.SignStreaming(r, bytes.NewReader(payload), int64(len(payload)), chunkSize, m.checksum, f.now)
	} else {
		h = f.signer.Sign(r, StreamingUnsignedTrailer, f.now)
		enc, err = NewUnsignedChunkEncoder(bytes.NewReader(payload), int64(len(payload)), chunkSize, m.checksum)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(enc)
	if err != nil {
		t.Fatal(err)
	}
	if want := ChunkedLength(int64(len(payload)), chunkSize, m.signed, m.checksum); int64(len(body)) != want {
		t.Fatalf("encoded %d bytes, ChunkedLength %d", len(body), want)
	}
	for k, v := range h {
		r.Header[k] = v
	}
	return r, body
}

func decode(t testing.TB, a *Auth, body []byte, n int64) ([]byte, io.Reader, error) {
	t.Helper()
	rd, err := a.Body(bytes.NewReader(body), n)
	if err != nil {
		t.Fatal(err)
	}
	// Small, odd reads exercise chunk boundaries inside one Read.
	var out []byte
	buf := make([]byte, 1000)
	for {
		k, err := rd.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out, rd, nil
		}
		if err != nil {
			return out, rd, err
		}
	}
}

func TestChunkedRoundTrip(t *testing.T) {
	f := newFixture(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, m := range streamModes {
		for _, chunkSize := range []int{17, 8192, 65536} {
			for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 5} {
				t.Run(fmt.Sprintf("%s/chunk%d/size%d", m.name, chunkSize, size), func(t *testing.T) {
					payload := make([]byte, size)
					for i := range payload {
						payload[i] = byte(rng.Uint32())
					}
					r, body := f.streamRequest(t, m, payload, chunkSize)
					a, err := f.v.Verify(r)
					if err != nil {
						t.Fatal(err)
					}
					got, rd, err := decode(t, a, body, int64(size))
					if err != nil || !bytes.Equal(got, payload) {
						t.Fatalf("decoded %d/%d bytes: %v", len(got), size, err)
					}
					if m.checksum != "" {
						tr := rd.(TrailerReader).Trailer()
						if tr.Get(m.checksum) != checksumOf(t, m.checksum, payload) {
							t.Errorf("trailer %v", tr)
						}
					}
					// Bodies arriving one byte, or half a buffer, at a time, or
					// with the data and EOF together.
					if size < 10000 {
						for name, wrap := range map[string]func(io.Reader) io.Reader{
							"one-byte": iotest.OneByteReader, "half": iotest.HalfReader, "data-err": iotest.DataErrReader,
						} {
							rd, err := a.Body(wrap(bytes.NewReader(body)), int64(size))
							if err != nil {
								t.Fatal(err)
							}
							if got, err := io.ReadAll(rd); err != nil || !bytes.Equal(got, payload) {
								t.Fatalf("%s reader: %d bytes, %v", name, len(got), err)
							}
						}
					}
					// Unknown decoded length works too.
					if got, _, err := decode(t, a, body, -1); err != nil || !bytes.Equal(got, payload) {
						t.Fatalf("decoded (length unknown) %d bytes: %v", len(got), err)
					}
				})
			}
		}
	}
}

func TestChunkedNegative(t *testing.T) {
	f := newFixture(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 3000) // 48000 bytes
	const chunk = 8192
	for _, m := range streamModes {
		r, body := f.streamRequest(t, m, payload, chunk)
		a, err := f.v.Verify(r)
		if err != nil {
			t.Fatal(err)
		}
		dataAt := bytes.Index(body, []byte("\r\n")) + 2 + 100 // inside the first chunk's data
		finalAt := bytes.LastIndex(body, []byte("\r\n0"))     // the final chunk
		type tc struct {
			name string
			body []byte
			n    int64
			want *Error
		}
		flip := func(i int) []byte {
			b := bytes.Clone(body)
			b[i] ^= 1
			return b
		}
		var tests []tc
		dataWant := ErrChunkSignature
		if !m.signed {
			dataWant = ErrBadDigest
		}
		if m.signed || m.checksum != "" {
			tests = append(tests, tc{"data bit flipped", flip(dataAt), int64(len(payload)), dataWant})
		}
		tests = append(tests,
			tc{"truncated in data", body[:dataAt], int64(len(payload)), ErrIncompleteBody},
			tc{"truncated before final chunk", body[:finalAt+2], int64(len(payload)), ErrIncompleteBody},
			tc{"truncated in header", body[:3], int64(len(payload)), ErrIncompleteBody},
			tc{"empty body", nil, int64(len(payload)), ErrIncompleteBody},
			tc{"declared longer", body, int64(len(payload)) + 1, ErrIncompleteBody},
			tc{"declared shorter", body, int64(len(payload)) - 1, ErrIncompleteBody},
			tc{"size not hex", append([]byte("zz"), body[4:]...), int64(len(payload)), ErrMalformedChunk},
			tc{"CRLF after data missing", bytes.Replace(body, []byte("\r\n2000"), []byte("xx2000"), 1), int64(len(payload)), ErrMalformedChunk},
		)
		if m.signed {
			sigAt := bytes.Index(body, []byte("chunk-signature=")) + 20
			tests = append(tests,
				tc{"chunk signature bit flipped", flip(sigAt), int64(len(payload)), ErrChunkSignature},
				tc{"final signature bit flipped", flip(finalAt + len("\r\n0;chunk-signature=") + 3), int64(len(payload)), ErrChunkSignature},
				tc{"signature missing", bytes.Replace(body, body[bytes.IndexByte(body, ';'):bytes.IndexByte(body, '\r')], nil, 1), int64(len(payload)), ErrMalformedChunk},
			)
			// Two full chunks swapped: same sizes, wrong chain.
			first := bytes.Index(body, []byte("2000;"))
			second := bytes.Index(body[first+1:], []byte("2000;")) + first + 1
			third := bytes.Index(body[second+1:], []byte("2000;")) + second + 1
			swapped := append(append(append(bytes.Clone(body[:first]), body[second:third]...), body[first:second]...), body[third:]...)
			tests = append(tests, tc{"chunks swapped", swapped, int64(len(payload)), ErrChunkSignature})
		}
		if m.checksum != "" {
			line := []byte(m.checksum + ":")
			at := bytes.Index(body, line) + len(line)
			wantTr := ErrBadDigest
			if m.signed {
				wantTr = ErrTrailerSignature
			}
			tests = append(tests,
				tc{"trailer value changed", changeB64(body, at), int64(len(payload)), wantTr},
				tc{"undeclared trailer", bytes.Replace(body, line, []byte("x-amz-meta-evil:"), 1), int64(len(payload)), ErrMalformedTrailer},
				tc{"truncated in trailer", body[:at], int64(len(payload)), ErrIncompleteBody},
			)
		}
		for _, c := range tests {
			t.Run(m.name+"/"+c.name, func(t *testing.T) {
				got, rd, err := decode(t, a, c.body, c.n)
				if !errors.Is(err, c.want) {
					t.Fatalf("decoded %d bytes, err %v, want %v", len(got), err, c.want)
				}
				// Sticky: never a clean EOF afterwards.
				if _, err2 := rd.Read(make([]byte, 10)); err2 != err {
					t.Errorf("second read %v, want %v", err2, err)
				}
			})
		}
	}
}

// changeB64 returns body with the base64 character at i replaced by another
// valid one.
func changeB64(body []byte, i int) []byte {
	b := bytes.Clone(body)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return b
}

func TestChunkedMinChunkSize(t *testing.T) {
	f := newFixture(t)
	payload := bytes.Repeat([]byte("x"), 3*S3ChunkMinimum)
	for _, tc := range []struct {
		chunk int
		want  *Error
	}{
		{S3ChunkMinimum, nil},
		{4 * S3ChunkMinimum, nil}, // one chunk only: the last may be small
		{S3ChunkMinimum - 1, ErrInvalidChunkSize},
		{1000, ErrInvalidChunkSize},
	} {
		for _, m := range []streamMode{{"signed", true, ""}, {"unsigned-crc32c", false, "x-amz-checksum-crc32c"}} {
			t.Run(fmt.Sprintf("%s/%d", m.name, tc.chunk), func(t *testing.T) {
				r, body := f.streamRequest(t, m, payload, tc.chunk)
				v := &Verifier{Lookup: f.v.Lookup, Now: f.v.Now, MinChunkSize: S3ChunkMinimum}
				a, err := v.Verify(r)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = decode(t, a, body, int64(len(payload)))
				if tc.want == nil {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				e := wantErr(t, err, tc.want)
				if e.detail("Chunk") != "1" || e.detail("BadChunkSize") != strconv.Itoa(tc.chunk) {
					t.Errorf("details %+v", e.Details)
				}
				// Without the minimum (the default), the same body is fine.
				a, _ = f.v.Verify(r)
				if _, _, err := decode(t, a, body, int64(len(payload))); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestChunkedContentMD5(t *testing.T) {
	f := newFixture(t)
	payload := bytes.Repeat([]byte("md5 "), 10000)
	for _, m := range []streamMode{{"signed", true, ""}, {"unsigned-crc32c", false, "x-amz-checksum-crc32c"}} {
		for _, tc := range []struct {
			name, md5 string
			want      *Error
		}{
			{"ok", checksumOf(t, contentMD5, payload), nil},
			{"bad", checksumOf(t, contentMD5, payload[1:]), ErrContentMD5Mismatch},
		} {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				r, body := f.streamRequestWith(t, m, payload, 8192, http.Header{"Content-Md5": {tc.md5}})
				a, err := f.v.Verify(r)
				if err != nil {
					t.Fatal(err)
				}
				got, _, err := decode(t, a, body, int64(len(payload)))
				if tc.want == nil {
					if err != nil || !bytes.Equal(got, payload) {
						t.Fatal(err)
					}
					return
				}
				wantErr(t, err, tc.want)
			})
		}
	}
}

// lineReader returns its data up to and including the next '\n' per Read.
type lineReader struct{ b []byte }

func (l *lineReader) Read(p []byte) (int, error) {
	if len(l.b) == 0 {
		return 0, io.EOF
	}
	n := len(l.b)
	if i := bytes.IndexByte(l.b, '\n'); i >= 0 {
		n = i + 1
	}
	n = copy(p, l.b[:n])
	l.b = l.b[n:]
	return n, nil
}
