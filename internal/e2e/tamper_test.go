package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
)

// getResult is what a client received for a GET.
type getResult struct {
	status  int    // HTTP status of an error answer, 0 if the answer was 2xx
	code    string // S3 error code of an error answer
	body    []byte // bytes received before the end or the failure
	readErr error  // error while reading a 2xx body (connection aborted, ...)
}

func (r getResult) String() string {
	if r.status != 0 || r.code != "" {
		return fmt.Sprintf("error %d %s", r.status, r.code)
	}
	if r.readErr != nil {
		return fmt.Sprintf("2xx, body aborted after %d bytes: %v", len(r.body), r.readErr)
	}
	return fmt.Sprintf("2xx, complete body of %d bytes", len(r.body))
}

// getVia GETs bucket/key (optionally a range) with client and records what
// arrived.
func getVia(t *testing.T, c *s3.Client, bucket, key, rng string) getResult {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := c.GetObject(ctx, in)
	if err != nil {
		code, status := testenv.APIError(err)
		if status == 0 && code == "" {
			code = err.Error()
		}
		return getResult{status: status, code: code}
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, 1<<30))
	return getResult{body: body, readErr: err}
}

// assertNoTamperedPlaintext checks that a GET of tampered data delivered no
// plaintext the client could take as the object: the request failed (an
// error status, or a body cut short), and whatever arrived is a prefix of
// the true plaintext, never other bytes.
func assertNoTamperedPlaintext(t *testing.T, what string, r getResult, want []byte) {
	t.Helper()
	if r.status >= 400 {
		return
	}
	if r.status != 0 || r.code != "" {
		t.Errorf("%s: request failed oddly: %v", what, r)
		return
	}
	if !bytes.HasPrefix(want, r.body) {
		t.Errorf("%s: delivered %d bytes that are not a prefix of the plaintext (%v)", what, len(r.body), r)
		return
	}
	if r.readErr == nil {
		t.Errorf("%s: tampering not detected: %v", what, r)
	}
}

// awaitLog waits for the proxy to log about key after mark, and returns it.
func awaitLog(p *testenv.S3seal, mark int64, key string) string {
	deadline := time.Now().Add(3 * time.Second)
	for {
		l := p.LogSince(mark)
		if strings.Contains(l, key) || time.Now().After(deadline) {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logExplains reports whether a log excerpt names the key and says, at
// warning or error level or in words, that something failed.
func logExplains(l, key string) bool {
	if !strings.Contains(l, key) {
		return false
	}
	low := strings.ToLower(l)
	for _, w := range []string{"level=error", "level=warn", "authentic", "tamper", "integrity", "corrupt",
		"truncat", "invalid", "mismatch", "decrypt", "unseal", "commitment", "fail", "error"} {
		if strings.Contains(low, w) {
			return true
		}
	}
	return false
}

func TestTamperedObjectsAreRefused(t *testing.T) {
	p := startProxy(t)
	bucket := newBucket(t, "tamper")
	c := p.S3Client()
	ctx := context.Background()

	// Object sizes: 300000 bytes spans 5 segments; 4 and 3 full segments
	// give a truncation to a length that is valid for a shorter object.
	const size = 300_000
	put := func(t *testing.T, key string, n int) []byte {
		t.Helper()
		plain := plaintext("tamper/"+key, n)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(plain),
		}); err != nil {
			t.Fatalf("PUT %s through the proxy: %v", key, err)
		}
		// Sanity: the untouched object reads back.
		if r := getVia(t, c, bucket, key, ""); r.status != 0 || r.readErr != nil || !bytes.Equal(r.body, plain) {
			t.Fatalf("untouched %s does not read back: %v", key, r)
		}
		return plain
	}

	flip := func(off func(n int) int) func(t *testing.T, key string, st storedObject) storedObject {
		return func(t *testing.T, key string, st storedObject) storedObject {
			b := bytes.Clone(st.Body)
			b[off(len(b))] ^= 0x01
			st.Body = b
			return st
		}
	}
	truncate := func(cut func(n int) int) func(t *testing.T, key string, st storedObject) storedObject {
		return func(t *testing.T, key string, st storedObject) storedObject {
			st.Body = st.Body[:cut(len(st.Body))]
			return st
		}
	}
	// other writes a second object through the proxy and returns what
	// MinIO holds for it.
	other := func(t *testing.T, key string, n int) storedObject {
		t.Helper()
		put(t, key+".other", n)
		return readStored(t, bucket, key+".other")
	}

	cases := []struct {
		name   string
		size   int
		tamper func(t *testing.T, key string, st storedObject) storedObject
		ranges []string // also GET these ranges of the tampered object
	}{
		{"flip-first-byte", size, flip(func(int) int { return 0 }), []string{"bytes=0-15"}},
		{"flip-middle-byte", size, flip(func(n int) int { return n / 2 }), []string{"bytes=140000-160000"}},
		{"flip-last-byte", size, flip(func(n int) int { return n - 1 }), []string{"bytes=-1"}},
		{"truncate-1", size, truncate(func(n int) int { return n - 1 }), []string{"bytes=-1"}},
		{"truncate-16", size, truncate(func(n int) int { return n - 16 }), nil},
		{"truncate-half", size, truncate(func(n int) int { return n / 2 }), nil},
		{"truncate-to-empty", size, truncate(func(int) int { return 0 }), nil},
		{"append-byte", size, func(t *testing.T, key string, st storedObject) storedObject {
			st.Body = append(bytes.Clone(st.Body), 0)
			return st
		}, []string{"bytes=-1"}},
		{"truncate-whole-final-segment", 4 << 16, func(t *testing.T, key string, st storedObject) storedObject {
			// A length that is valid for a 3-segment object: only the
			// final-segment flag (or a length in the header) can tell.
			short := other(t, key, 3<<16)
			st.Body = st.Body[:len(short.Body)]
			return st
		}, nil},
		{"swap-body-keep-metadata", size, func(t *testing.T, key string, st storedObject) storedObject {
			st.Body = other(t, key, size).Body
			return st
		}, nil},
		{"swap-body-and-metadata", size, func(t *testing.T, key string, st storedObject) storedObject {
			return other(t, key, size)
		}, nil},
		{"metadata-from-other-key", size, func(t *testing.T, key string, st storedObject) storedObject {
			st.Metadata = maps.Clone(other(t, key, size).Metadata)
			return st
		}, nil},
		{"corrupt-metadata", size, func(t *testing.T, key string, st storedObject) storedObject {
			m := maps.Clone(st.Metadata)
			v := []byte(m[metaKey])
			if len(v) < 8 {
				t.Fatalf("x-amz-meta-%s is %q", metaKey, v)
			}
			i := len(v) / 2
			if v[i] == 'A' {
				v[i] = 'B'
			} else {
				v[i] = 'A'
			}
			m[metaKey] = string(v)
			st.Metadata = m
			return st
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := "tampered/" + tc.name
			plain := put(t, key, tc.size)
			st := readStored(t, bucket, key)
			writeStored(t, bucket, key, tc.tamper(t, key, st))

			mark := p.LogOffset()
			r := getVia(t, c, bucket, key, "")
			t.Logf("GET %s: %v", key, r)
			assertNoTamperedPlaintext(t, "GET "+key, r, plain)
			for _, h := range tc.ranges {
				rr, ok := parseRange(h, int64(len(plain)))
				if !ok {
					t.Fatalf("bad range %s", h)
				}
				res := getVia(t, c, bucket, key, h)
				t.Logf("GET %s %s: %v", key, h, res)
				assertNoTamperedPlaintext(t, "GET "+key+" "+h, res, plain[rr.start:rr.end+1])
			}
			l := awaitLog(p, mark, key)
			if !logExplains(l, key) {
				t.Errorf("the proxy's log does not say why GET %s failed; it logged:\n%s", key, l)
			} else {
				t.Logf("proxy log:\n%s", strings.TrimSpace(l))
			}
			// The proxy is still up and serves untouched objects.
			if ok, err := p.Exited(); ok {
				t.Fatalf("proxy exited: %v", err)
			}
		})
	}
}
