package sigv4

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testKeys returns a fresh access key / secret pair, generated at test time.
func testKeys(t testing.TB) (string, string) {
	t.Helper()
	b := make([]byte, 30)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "AKID" + strings.ToUpper(hex.EncodeToString(b[:8])), hex.EncodeToString(b[8:])
}

var t0 = time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)

type fixture struct {
	ak, sk string
	signer *Signer
	v      *Verifier
	now    time.Time
}

func newFixture(t testing.TB) *fixture {
	ak, sk := testKeys(t)
	f := &fixture{ak: ak, sk: sk, now: t0}
	f.signer = &Signer{AccessKey: ak, SecretKey: sk, Region: "us-east-1"}
	f.v = &Verifier{
		Lookup: func(k string) (string, bool) {
			if k == ak {
				return sk, true
			}
			return "", false
		},
		Region: "us-east-1",
		Now:    func() time.Time { return f.now },
	}
	return f
}

func baseRequest() *Request {
	return &Request{
		Method:   "PUT",
		RawPath:  "/bucket/a%20b//c%2Fd/./e+f=g~h",
		RawQuery: "partNumber=1&uploadId=abc%2Bdef",
		Host:     "s3.example.com:9000",
		Header: http.Header{
			"Content-Type":        {"application/octet-stream"},
			"X-Amz-Meta-Color":    {"blue"},
			"X-Amz-Storage-Class": {"STANDARD"},
		},
	}
}

// signed returns a header-signed copy of r.
func (f *fixture) signed(r *Request, payload string) *Request {
	c := *r
	c.Header = r.Header.Clone()
	for k, v := range f.signer.Sign(r, payload, f.now) {
		c.Header[k] = v
	}
	return &c
}

// presigned returns a presigned copy of r.
func (f *fixture) presigned(r *Request, expires time.Duration) *Request {
	c := *r
	c.Header = r.Header.Clone()
	c.RawQuery = f.signer.Presign(r, expires, f.now)
	return &c
}

func wantErr(t *testing.T, err error, want *Error) *Error {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %s (%s)", err, want.Code, want.Message)
	}
	var e *Error
	errors.As(err, &e)
	if e.Status != want.Status {
		t.Errorf("status %d, want %d", e.Status, want.Status)
	}
	return e
}

func TestVerifyHeaderOK(t *testing.T) {
	f := newFixture(t)
	r := f.signed(baseRequest(), UnsignedPayload)
	a, err := f.v.Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessKey != f.ak || a.PayloadHash != UnsignedPayload || a.Presigned || !a.Time.Equal(f.now) || a.Region != "us-east-1" || a.Service != "s3" {
		t.Fatalf("auth %+v", a)
	}
	// Within the skew window on both sides.
	for _, d := range []time.Duration{-15 * time.Minute, 15 * time.Minute} {
		f.now = t0.Add(d)
		if _, err := f.v.Verify(r); err != nil {
			t.Errorf("skew %v: %v", d, err)
		}
	}
}

func TestVerifyHeaderNegative(t *testing.T) {
	f := newFixture(t)
	good := f.signed(baseRequest(), UnsignedPayload)
	mutate := func(fn func(r *Request)) *Request {
		c := *good
		c.Header = good.Header.Clone()
		fn(&c)
		return &c
	}
	malformed := &Error{Code: "AuthorizationHeaderMalformed", Status: 400}
	tests := []struct {
		name string
		r    *Request
		v    func(v *Verifier)
		want *Error
	}{
		{"wrong secret", good, func(v *Verifier) {
			v.Lookup = func(string) (string, bool) { return "wrong", true }
		}, ErrSignatureDoesNotMatch},
		{"unknown key", good, func(v *Verifier) {
			v.Lookup = func(string) (string, bool) { return "", false }
		}, ErrInvalidAccessKeyID},
		{"signature off by one bit", mutate(func(r *Request) {
			h := r.Header.Get("Authorization")
			last := h[len(h)-1]
			r.Header.Set("Authorization", h[:len(h)-1]+string(last^1))
		}), nil, ErrSignatureDoesNotMatch},
		{"upper-case signature", mutate(func(r *Request) {
			h := r.Header.Get("Authorization")
			i := strings.LastIndex(h, "=")
			r.Header.Set("Authorization", h[:i+1]+strings.ToUpper(h[i+1:]))
		}), nil, ErrSignatureDoesNotMatch},
		{"skew +16min", good, func(v *Verifier) {
			v.Now = func() time.Time { return t0.Add(16 * time.Minute) }
		}, ErrRequestTimeTooSkewed},
		{"skew -16min", good, func(v *Verifier) {
			v.Now = func() time.Time { return t0.Add(-16 * time.Minute) }
		}, ErrRequestTimeTooSkewed},
		{"unsigned x-amz header", mutate(func(r *Request) {
			r.Header.Set("X-Amz-Acl", "public-read")
		}), nil, ErrUnsignedHeaders},
		{"tampered signed header", mutate(func(r *Request) {
			r.Header.Set("X-Amz-Meta-Color", "red")
		}), nil, ErrSignatureDoesNotMatch},
		{"tampered content-type", mutate(func(r *Request) {
			r.Header.Set("Content-Type", "text/html")
		}), nil, ErrSignatureDoesNotMatch},
		{"tampered path", mutate(func(r *Request) { r.RawPath = "/bucket/a%20b/c%2Fd/./e+f=g~h" }), nil, ErrSignatureDoesNotMatch},
		{"path re-encoded", mutate(func(r *Request) { r.RawPath = strings.ReplaceAll(r.RawPath, "%2F", "/") }), nil, ErrSignatureDoesNotMatch},
		{"tampered query", mutate(func(r *Request) { r.RawQuery = "partNumber=2&uploadId=abc%2Bdef" }), nil, ErrSignatureDoesNotMatch},
		{"added query", mutate(func(r *Request) { r.RawQuery += "&acl" }), nil, ErrSignatureDoesNotMatch},
		{"tampered host", mutate(func(r *Request) { r.Host = "s3.example.com:9001" }), nil, ErrSignatureDoesNotMatch},
		{"tampered method", mutate(func(r *Request) { r.Method = "POST" }), nil, ErrSignatureDoesNotMatch},
		{"tampered payload hash", mutate(func(r *Request) { r.Header.Set("X-Amz-Content-Sha256", EmptySHA256) }), nil, ErrSignatureDoesNotMatch},
		{"invalid payload hash", mutate(func(r *Request) { r.Header.Set("X-Amz-Content-Sha256", "nope") }), nil, ErrInvalidContentSHA256},
		{"sigv4a streaming", mutate(func(r *Request) {
			r.Header.Set("X-Amz-Content-Sha256", streamingECDSAPayload)
		}), nil, ErrUnsupportedPayload},
		{"host not signed", mutate(func(r *Request) {
			h := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(h, "SignedHeaders=content-type;host;", "SignedHeaders=content-type;", 1))
		}), nil, ErrUnsignedHeaders},
		{"wrong region", good, func(v *Verifier) { v.Region = "eu-west-1" }, malformed},
		{"wrong service", good, func(v *Verifier) { v.Service = "sqs" }, malformed},
		{"missing date", mutate(func(r *Request) { r.Header.Del("X-Amz-Date") }), nil, ErrMissingDate},
		{"bad date", mutate(func(r *Request) { r.Header.Set("X-Amz-Date", "2026-11-23T20:00:00Z") }), nil, ErrMissingDate},
		{"date not scope date", mutate(func(r *Request) {
			r.Header.Set("X-Amz-Date", "20261124T000100Z")
		}), func(v *Verifier) { v.Now = func() time.Time { return time.Date(2026, 11, 24, 0, 1, 0, 0, time.UTC) } }, malformed},
		{"sigv2", mutate(func(r *Request) { r.Header.Set("Authorization", "AWS AKID:c2ln") }), nil, ErrUnsupportedAlgorithm},
		{"sigv4a", mutate(func(r *Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), Algorithm, "AWS4-ECDSA-P256-SHA256", 1))
		}), nil, ErrUnsupportedAlgorithm},
		{"missing signature", mutate(func(r *Request) {
			h := r.Header.Get("Authorization")
			r.Header.Set("Authorization", h[:strings.LastIndex(h, ", Signature=")])
		}), nil, malformed},
		{"duplicate component", mutate(func(r *Request) {
			r.Header.Set("Authorization", r.Header.Get("Authorization")+", Signature=00")
		}), nil, malformed},
		{"bad credential", mutate(func(r *Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
		}), nil, malformed},
		{"two authorization headers", mutate(func(r *Request) {
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
		}), nil, malformed},
		{"header and query auth", mutate(func(r *Request) {
			r.RawQuery += "&X-Amz-Signature=00"
		}), nil, ErrMultipleAuth},
		{"anonymous", &Request{Method: "GET", RawPath: "/b/k", Host: "h", Header: http.Header{}}, nil, ErrMissingAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Lookup: f.v.Lookup, Region: f.v.Region, Now: f.v.Now}
			if tc.v != nil {
				tc.v(v)
			}
			a, err := v.Verify(tc.r)
			if a != nil {
				t.Fatalf("auth returned with error %v", err)
			}
			e := wantErr(t, err, tc.want)
			switch tc.want {
			case ErrSignatureDoesNotMatch:
				if e.StringToSign == "" || e.CanonicalRequest == "" || e.AccessKeyID != f.ak {
					t.Errorf("SignatureDoesNotMatch without details: %+v", e)
				}
			case ErrUnsignedHeaders:
				if e.detail("HeadersNotSigned") == "" {
					t.Errorf("no HeadersNotSigned: %+v", e)
				}
			case ErrRequestTimeTooSkewed:
				if e.detail("MaxAllowedSkewMilliseconds") != "900000" {
					t.Errorf("details %+v", e.Details)
				}
			}
			if tc.name == "wrong region" && e.detail("Region") != "eu-west-1" {
				t.Errorf("wrong region details %+v", e.Details)
			}
		})
	}
}

func TestVerifyDateHeader(t *testing.T) {
	// Date instead of X-Amz-Date.
	f := newFixture(t)
	r := baseRequest()
	r.Header.Set("Date", f.now.Format(http.TimeFormat))
	names := []string{"content-type", "date", "host", "x-amz-content-sha256", "x-amz-meta-color", "x-amz-storage-class"}
	r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
	amzDate := formatAmzDate(f.now)
	sig, _, _ := f.signer.signWith(r, amzDate, names, requestHeaders{r},
		appendCanonicalQuery(nil, parseQuery(r.RawQuery), ""), UnsignedPayload)
	r.Header.Set("Authorization", Algorithm+" Credential="+f.ak+"/"+f.signer.scope(amzDate).String()+
		",SignedHeaders="+strings.Join(names, ";")+",Signature="+sig)
	if _, err := f.v.Verify(r); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyPresignedOK(t *testing.T) {
	f := newFixture(t)
	r := f.presigned(baseRequest(), time.Hour)
	a, err := f.v.Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Presigned || a.PayloadHash != UnsignedPayload || a.AccessKey != f.ak {
		t.Fatalf("auth %+v", a)
	}
	f.now = t0.Add(time.Hour) // the last valid second
	if _, err := f.v.Verify(r); err != nil {
		t.Fatal(err)
	}
	// Maximum validity.
	f.now = t0
	r = f.presigned(baseRequest(), MaxExpires)
	f.now = t0.Add(MaxExpires - time.Second)
	if _, err := f.v.Verify(r); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyPresignedNegative(t *testing.T) {
	f := newFixture(t)
	good := f.presigned(baseRequest(), time.Hour)
	mutate := func(fn func(r *Request)) *Request {
		c := *good
		c.Header = good.Header.Clone()
		fn(&c)
		return &c
	}
	replaceParam := func(q, name, value string) string {
		var out []string
		for p := range strings.SplitSeq(q, "&") {
			if strings.HasPrefix(p, name+"=") {
				p = name + "=" + value
			}
			out = append(out, p)
		}
		return strings.Join(out, "&")
	}
	paramErr := &Error{Code: "AuthorizationQueryParametersError", Status: 400}
	tests := []struct {
		name string
		r    *Request
		now  time.Time
		want *Error
	}{
		{"expired", good, t0.Add(time.Hour + time.Second), ErrExpired},
		{"not yet valid", good, t0.Add(-16 * time.Minute), ErrNotYetValid},
		{"duplicated signature", mutate(func(r *Request) { r.RawQuery += "&X-Amz-Signature=00" }), t0, paramErr},
		{"duplicated credential", mutate(func(r *Request) {
			r.RawQuery = "X-Amz-Credential=x&" + r.RawQuery
		}), t0, paramErr},
		{"duplicated expires", mutate(func(r *Request) { r.RawQuery += "&X-Amz-Expires=604800" }), t0, paramErr},
		{"duplicated date", mutate(func(r *Request) { r.RawQuery += "&X-Amz-Date=20261123T200000Z" }), t0, paramErr},
		{"duplicated signed headers", mutate(func(r *Request) { r.RawQuery += "&X-Amz-SignedHeaders=host" }), t0, paramErr},
		{"duplicated security token", mutate(func(r *Request) {
			r.RawQuery = "X-Amz-Security-Token=a&X-Amz-Security-Token=b&" + r.RawQuery
		}), t0, paramErr},
		{"duplicated algorithm", mutate(func(r *Request) { r.RawQuery += "&X-Amz-Algorithm=AWS4-HMAC-SHA256" }), t0, paramErr},
		{"missing expires", mutate(func(r *Request) {
			r.RawQuery = strings.Replace(r.RawQuery, "X-Amz-Expires=3600&", "", 1)
		}), t0, paramErr},
		{"expires too long", mutate(func(r *Request) { r.RawQuery = replaceParam(r.RawQuery, "X-Amz-Expires", "604801") }), t0, paramErr},
		{"negative expires", mutate(func(r *Request) { r.RawQuery = replaceParam(r.RawQuery, "X-Amz-Expires", "-1") }), t0, paramErr},
		{"expires not a number", mutate(func(r *Request) { r.RawQuery = replaceParam(r.RawQuery, "X-Amz-Expires", "1h") }), t0, paramErr},
		{"longer expires", mutate(func(r *Request) { r.RawQuery = replaceParam(r.RawQuery, "X-Amz-Expires", "7200") }), t0, ErrSignatureDoesNotMatch},
		{"bad algorithm", mutate(func(r *Request) {
			r.RawQuery = replaceParam(r.RawQuery, "X-Amz-Algorithm", "AWS4-HMAC-SHA1")
		}), t0, paramErr},
		{"bad date", mutate(func(r *Request) { r.RawQuery = replaceParam(r.RawQuery, "X-Amz-Date", "20261123") }), t0, paramErr},
		{"signature off by one bit", mutate(func(r *Request) {
			last := r.RawQuery[len(r.RawQuery)-1]
			r.RawQuery = r.RawQuery[:len(r.RawQuery)-1] + string(last^1)
		}), t0, ErrSignatureDoesNotMatch},
		{"unsigned x-amz header", mutate(func(r *Request) { r.Header.Set("X-Amz-Acl", "public-read") }), t0, ErrUnsignedHeaders},
		{"tampered path", mutate(func(r *Request) { r.RawPath += "x" }), t0, ErrSignatureDoesNotMatch},
		{"added parameter", mutate(func(r *Request) { r.RawQuery = "versionId=1&" + r.RawQuery }), t0, ErrSignatureDoesNotMatch},
		{"content sha256 header changes payload", mutate(func(r *Request) {
			r.Header.Set("X-Amz-Content-Sha256", EmptySHA256)
		}), t0, ErrUnsignedHeaders},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Lookup: f.v.Lookup, Region: f.v.Region, Now: func() time.Time { return tc.now }}
			a, err := v.Verify(tc.r)
			if a != nil {
				t.Fatalf("auth returned with error %v", err)
			}
			e := wantErr(t, err, tc.want)
			if tc.want == ErrExpired && e.detail("X-Amz-Expires") != "3600" {
				t.Errorf("details %+v", e.Details)
			}
		})
	}
	// Unknown key, wrong secret.
	v := &Verifier{Lookup: func(string) (string, bool) { return "", false }, Now: f.v.Now}
	_, err := v.Verify(good)
	wantErr(t, err, ErrInvalidAccessKeyID)
	v = &Verifier{Lookup: func(string) (string, bool) { return "wrong", true }, Now: f.v.Now}
	_, err = v.Verify(good)
	wantErr(t, err, ErrSignatureDoesNotMatch)
	v = &Verifier{Lookup: f.v.Lookup, Now: f.v.Now, Region: "eu-west-1"}
	_, err = v.Verify(good)
	wantErr(t, err, paramErr)
}

func TestBodySHA256(t *testing.T) {
	f := newFixture(t)
	body := bytes.Repeat([]byte("0123456789"), 10000)
	r := f.signed(baseRequest(), sha256Hex(body))
	a, err := f.v.Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		body   []byte
		length int64
		want   *Error
	}{
		{"good", body, int64(len(body)), nil},
		{"good unknown length", body, -1, nil},
		{"bad hash at EOF", append(bytes.Clone(body[:len(body)-1]), 'x'), int64(len(body)), ErrContentSHA256Mismatch},
		{"short", body[:len(body)-1], int64(len(body)), ErrIncompleteBody},
		{"long", append(bytes.Clone(body), 'x'), int64(len(body)), ErrIncompleteBody},
		{"empty", nil, 0, ErrContentSHA256Mismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := a.Body(bytes.NewReader(tc.body), tc.length)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(io.LimitReader(rd, 1<<30))
			if tc.want == nil {
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("read %d bytes, %v", len(got), err)
				}
				return
			}
			wantErr(t, err, tc.want)
			// Sticky: the error again, never a clean EOF.
			if _, err := rd.Read(make([]byte, 1)); !errors.Is(err, tc.want) {
				t.Errorf("second read: %v", err)
			}
		})
	}
}

func TestBodyUnsignedWithChecksumHeader(t *testing.T) {
	f := newFixture(t)
	body := []byte("hello, world")
	for _, tc := range []struct {
		name, alg, value string
		want             *Error
	}{
		{"crc32 ok", "x-amz-checksum-crc32", "/6tyOg==" /* python zlib.crc32 */, nil},
		{"crc32 bad", "x-amz-checksum-crc32", "AAAAAA==", ErrBadDigest},
		{"crc32c ok", "x-amz-checksum-crc32c", checksumOf(t, "x-amz-checksum-crc32c", body), nil},
		{"sha256 bad", "x-amz-checksum-sha256", checksumOf(t, "x-amz-checksum-sha256", []byte("x")), ErrBadDigest},
		{"crc64nvme ok", "x-amz-checksum-crc64nvme", checksumOf(t, "x-amz-checksum-crc64nvme", body), nil},
		{"sha1 bad", "x-amz-checksum-sha1", checksumOf(t, "x-amz-checksum-sha1", body[1:]), ErrBadDigest},
		{"crc32 malformed", "x-amz-checksum-crc32", "AAAA", ErrInvalidChecksum},
		{"content-md5 ok", "Content-Md5", "5NfxtO0uQtFYmPSyewGdpA==" /* python hashlib */, nil},
		{"content-md5 bad", "Content-Md5", checksumOf(t, contentMD5, body[1:]), ErrContentMD5Mismatch},
		{"content-md5 malformed", "Content-Md5", "not-md5", ErrInvalidDigest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := baseRequest()
			req.Header.Set(tc.alg, tc.value)
			r := f.signed(req, UnsignedPayload)
			a, err := f.v.Verify(r)
			if err != nil {
				t.Fatal(err)
			}
			rd, err := a.Body(bytes.NewReader(body), int64(len(body)))
			if err == nil {
				_, err = io.ReadAll(rd)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tc.want)
		})
	}
}

func checksumOf(t testing.TB, alg string, b []byte) string {
	t.Helper()
	h := newChecksumHash(alg)
	h.Write(b)
	return b64(h.Sum(nil))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
