package sigv4

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestAgainstMinIO signs requests with Signer (header, presigned, signed
// aws-chunked, unsigned aws-chunked with trailers) and sends them to a real
// MinIO, an independent SigV4 implementation: it must accept all of them and
// return what was stored.
func TestAgainstMinIO(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	u, err := url.Parse(m.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	s := &Signer{AccessKey: m.AccessKey, SecretKey: m.SecretKey, Region: "us-east-1"}
	client := &http.Client{Timeout: 30 * time.Second}

	do := func(t *testing.T, method, rawPath, rawQuery string, h http.Header, body io.Reader, length int64, payload string) (*http.Response, []byte) {
		t.Helper()
		if h == nil {
			h = http.Header{}
		}
		r := &Request{Method: method, RawPath: rawPath, RawQuery: rawQuery, Host: u.Host, Header: h}
		for k, v := range s.Sign(r, payload, time.Now()) {
			h[k] = v
		}
		return send(t, client, method, u.Host, rawPath, rawQuery, h, body, length)
	}
	ok := func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %s\n%s", resp.Request.Method, resp.Request.URL, resp.Status, body)
		}
	}

	// MinIO answers 503 until it has initialized, shortly after it is live.
	var resp *http.Response
	var body []byte
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, body = do(t, "PUT", "/sigv4-test", "", nil, nil, 0, EmptySHA256)
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	ok(t, resp, body)

	payload := make([]byte, 200_000)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	keys := []string{"plain", "a b/c+d=e~f!$'()*,;:@/é 日本.txt", "x%y&z?w#v"}
	for i, key := range keys {
		rawPath := "/sigv4-test/" + escapePath(key)
		modes := []struct {
			name string
			put  func(t *testing.T) (*http.Response, []byte)
		}{
			{"unsigned-payload", func(t *testing.T) (*http.Response, []byte) {
				return do(t, "PUT", rawPath, "", nil, bytes.NewReader(payload), int64(len(payload)), UnsignedPayload)
			}},
			{"sha256", func(t *testing.T) (*http.Response, []byte) {
				return do(t, "PUT", rawPath, "", http.Header{"Content-Type": {"application/x-test"}},
					bytes.NewReader(payload), int64(len(payload)), sha256Hex(payload))
			}},
			{"signed-chunks", func(t *testing.T) (*http.Response, []byte) {
				return putStreaming(t, s, client, u.Host, rawPath, payload, true, "")
			}},
			{"signed-chunks-crc32c", func(t *testing.T) (*http.Response, []byte) {
				return putStreaming(t, s, client, u.Host, rawPath, payload, true, "x-amz-checksum-crc32c")
			}},
			{"unsigned-trailer-crc32c", func(t *testing.T) (*http.Response, []byte) {
				return putStreaming(t, s, client, u.Host, rawPath, payload, false, "x-amz-checksum-crc32c")
			}},
			{"unsigned-trailer-crc64nvme", func(t *testing.T) (*http.Response, []byte) {
				return putStreaming(t, s, client, u.Host, rawPath, payload, false, "x-amz-checksum-crc64nvme")
			}},
			{"unsigned-trailer-sha256", func(t *testing.T) (*http.Response, []byte) {
				return putStreaming(t, s, client, u.Host, rawPath, payload, false, "x-amz-checksum-sha256")
			}},
		}
		for _, mode := range modes {
			t.Run(strconv.Itoa(i)+"/"+mode.name, func(t *testing.T) {
				payload[0] = byte(i) // each upload differs
				payload[1]++
				resp, body := mode.put(t)
				ok(t, resp, body)
				resp, body = do(t, "GET", rawPath, "", nil, nil, 0, EmptySHA256)
				ok(t, resp, body)
				if !bytes.Equal(body, payload) {
					t.Fatalf("GET returned %d bytes, not what was stored", len(body))
				}
				// Presigned GET with an extra query parameter.
				pr := &Request{Method: "GET", RawPath: rawPath, RawQuery: "response-content-type=text%2Fplain%3B%20x%3D1", Host: u.Host, Header: http.Header{}}
				q := s.Presign(pr, 10*time.Minute, time.Now())
				resp, body = send(t, client, "GET", u.Host, rawPath, q, http.Header{}, nil, 0)
				ok(t, resp, body)
				if !bytes.Equal(body, payload) || resp.Header.Get("Content-Type") != "text/plain; x=1" {
					t.Fatalf("presigned GET: %d bytes, Content-Type %q", len(body), resp.Header.Get("Content-Type"))
				}
			})
		}
	}

	// Listing with query values that need encoding.
	resp, body = do(t, "GET", "/sigv4-test", "list-type=2&prefix=a+b%2Fc%2Bd&delimiter=%2F&encoding-type=url", nil, nil, 0, EmptySHA256)
	ok(t, resp, body)
	if !strings.Contains(string(body), "<KeyCount>1</KeyCount>") {
		t.Errorf("listing: %s", body)
	}

	// MinIO does check: a signature by another secret is refused.
	bad := &Signer{AccessKey: m.AccessKey, SecretKey: m.SecretKey + "x", Region: "us-east-1"}
	h := http.Header{}
	r := &Request{Method: "GET", RawPath: "/sigv4-test/plain", Host: u.Host, Header: h}
	for k, v := range bad.Sign(r, EmptySHA256, time.Now()) {
		h[k] = v
	}
	resp, body = send(t, client, "GET", u.Host, "/sigv4-test/plain", "", h, nil, 0)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "SignatureDoesNotMatch") {
		t.Errorf("wrong secret: %s %s", resp.Status, body)
	}
}

func send(t *testing.T, client *http.Client, method, host, rawPath, rawQuery string, h http.Header, body io.Reader, length int64) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+host+"/", body)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = "//" + host + rawPath // sent exactly as signed
	req.URL.RawQuery = rawQuery
	req.Header = h
	req.ContentLength = length
	if length == 0 {
		req.Body = nil
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func putStreaming(t *testing.T, s *Signer, client *http.Client, host, rawPath string, payload []byte, signed bool, checksum string) (*http.Response, []byte) {
	t.Helper()
	const chunk = 64 << 10
	h := http.Header{
		"Content-Encoding":             {"aws-chunked"},
		"X-Amz-Decoded-Content-Length": {strconv.Itoa(len(payload))},
	}
	if checksum != "" {
		h.Set("X-Amz-Trailer", checksum)
	}
	r := &Request{Method: "PUT", RawPath: rawPath, Host: host, Header: h}
	var signedH http.Header
	var enc *ChunkEncoder
	var err error
	if signed {
		signedH, enc, err = s.SignStreaming(r, bytes.NewReader(payload), int64(len(payload)), chunk, checksum, time.Now())
	} else {
		signedH = s.Sign(r, StreamingUnsignedTrailer, time.Now())
		enc, err = NewUnsignedChunkEncoder(bytes.NewReader(payload), int64(len(payload)), chunk, checksum)
	}
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range signedH {
		h[k] = v
	}
	return send(t, client, "PUT", host, rawPath, "", h, enc, ChunkedLength(int64(len(payload)), chunk, signed, checksum))
}
