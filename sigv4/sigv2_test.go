package sigv4

import (
	"bytes"
	"crypto/fips140"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/internal/testenv"
)

// v2DocCase is one case of testdata/sigv2/s3-docs.json.
type v2DocCase struct {
	Name            string      `json:"name"`
	AccessKey       string      `json:"access_key"`
	SecretKey       string      `json:"secret_key"`
	Method          string      `json:"method"`
	Path            string      `json:"path"`
	Query           string      `json:"query"`
	Host            string      `json:"host"`
	Bucket          string      `json:"bucket"`
	Headers         [][2]string `json:"headers"`
	Now             time.Time   `json:"now"`
	StringToSign    string      `json:"string_to_sign"`
	DocStringToSign string      `json:"doc_string_to_sign"`
	Signature       string      `json:"signature"`
}

func loadV2DocCases(t *testing.T) []v2DocCase {
	t.Helper()
	b, err := os.ReadFile("../testdata/sigv2/s3-docs.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []v2DocCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) < 10 {
		t.Fatalf("only %d cases in s3-docs.json", len(doc.Cases))
	}
	return doc.Cases
}

func (c v2DocCase) request() *Request {
	h := http.Header{}
	for _, kv := range c.Headers {
		h.Add(kv[0], kv[1])
	}
	if !strings.Contains(c.Query, "Signature=") {
		h.Set("Authorization", "AWS "+c.AccessKey+":"+c.Signature)
	}
	return &Request{Method: c.Method, RawPath: c.Path, RawQuery: c.Query, Host: c.Host, Header: h, Bucket: c.Bucket}
}

func (c v2DocCase) verifier() *Verifier {
	return &Verifier{
		Lookup:  func(k string) (string, bool) { return c.SecretKey, k == c.AccessKey },
		Now:     func() time.Time { return c.Now },
		AllowV2: true,
	}
}

// v2Expires returns the Expires query parameter of r, "" if none.
func v2Expires(r *Request) string {
	for _, p := range parseQuery(r.RawQuery) {
		if p.name == v2QueryExpires {
			return p.value
		}
	}
	return ""
}

// skipV2InFIPSMode skips a test of V2 verification in FIPS 140-3 mode, where
// no V2 request is verified at all (Verifier.v2Allowed);
// TestV2RefusedInFIPSMode checks that refusal, in every pass.
func skipV2InFIPSMode(t testing.TB) {
	t.Helper()
	if fips140.Enabled() {
		t.Skip("Signature V2 is refused in FIPS 140-3 mode (TestV2RefusedInFIPSMode)")
	}
}

// TestV2RefusedInFIPSMode: in FIPS 140-3 mode the documentation's V2
// requests, header and query, and a V2 POST policy are refused with
// ErrUnsupportedAlgorithm though AllowV2 is set and each is signed right,
// and V4 still verifies.
func TestV2RefusedInFIPSMode(t *testing.T) {
	if !testenv.InFIPSMode(t) {
		return
	}
	for _, c := range loadV2DocCases(t) {
		_, err := c.verifier().Verify(c.request())
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrUnsupportedAlgorithm) || e.Status != 400 {
			t.Errorf("%s: %v, want ErrUnsupportedAlgorithm", c.Name, err)
		}
	}
	v := &Verifier{Lookup: func(k string) (string, bool) { return "secret", k == "AK" }, AllowV2: true}
	pol := policyB64(testPolicy)
	if _, err := v.VerifyPost(map[string]string{"policy": pol, "awsaccesskeyid": "AK", "signature": SignV2("secret", []byte(pol))}); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("V2 POST policy: %v, want ErrUnsupportedAlgorithm", err)
	}
	sig := SignPostPolicy("secret", "20261205", "us-east-1", "s3", pol)
	if _, err := v.VerifyPost(map[string]string{"policy": pol, "x-amz-algorithm": Algorithm,
		"x-amz-credential": "AK/20261205/us-east-1/s3/aws4_request", "x-amz-date": "20261205T000000Z", "x-amz-signature": sig}); err != nil {
		t.Errorf("V4 POST policy in FIPS mode: %v", err)
	}
}

// TestSigV2DocVectors verifies the examples of S3's Signature V2
// documentation: our string to sign, the published signature, and the
// errors when a bit of it is off.
func TestSigV2DocVectors(t *testing.T) {
	skipV2InFIPSMode(t)
	for _, c := range loadV2DocCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			// The published signature is the HMAC of the published string
			// (checks that the vector was transcribed right).
			signed := c.StringToSign
			if c.DocStringToSign != "" {
				signed = c.DocStringToSign
			}
			if got := SignV2(c.SecretKey, []byte(signed)); got != c.Signature {
				t.Fatalf("HMAC of the documented string to sign is %s, the documentation says %s", got, c.Signature)
			}
			r := c.request()
			if got := StringToSignV2(r, v2Expires(r)); got != c.StringToSign {
				t.Errorf("string to sign:\n%q\nwant\n%q", got, c.StringToSign)
			}
			a, err := c.verifier().Verify(r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.AccessKey != c.AccessKey || a.PayloadHash != UnsignedPayload || a.Region != "" ||
				a.Presigned != (v2Expires(r) != "") || a.Signature != c.Signature {
				t.Errorf("auth = %+v", a)
			}
			if md := r.Header.Get("Content-MD5"); a.ContentMD5 != md {
				t.Errorf("ContentMD5 = %q, want %q", a.ContentMD5, md)
			}

			// One bit off in the signature.
			sig, _ := base64.StdEncoding.DecodeString(c.Signature)
			sig[len(sig)/2] ^= 0x08
			bad := base64.StdEncoding.EncodeToString(sig)
			r2 := c.request()
			if r2.RawQuery != "" && v2Expires(r2) != "" {
				r2.RawQuery = strings.Replace(r2.RawQuery, "Signature="+queryEscapeV2(c.Signature), "Signature="+queryEscapeV2(bad), 1)
			} else {
				r2.Header.Set("Authorization", "AWS "+c.AccessKey+":"+bad)
			}
			_, err = c.verifier().Verify(r2)
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrSignatureDoesNotMatch) || e.Status != 403 {
				t.Fatalf("one bit off: %v, want SignatureDoesNotMatch", err)
			}
			if e.StringToSign != c.StringToSign || e.SignatureProvided != bad || e.AccessKeyID != c.AccessKey {
				t.Errorf("error details: sts %q provided %q key %q", e.StringToSign, e.SignatureProvided, e.AccessKeyID)
			}
			if strings.Contains(fmt.Sprintf("%+v %s", *e, e.Error()), c.SecretKey) {
				t.Error("the error carries the secret key")
			}

			// V2 turned off.
			v := c.verifier()
			v.AllowV2 = false
			if _, err := v.Verify(c.request()); !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Errorf("V2 off: %v, want %v", err, ErrUnsupportedAlgorithm)
			}
		})
	}
}

func queryEscapeV2(s string) string {
	return string(appendURIEncode(nil, s))
}

// v2Fixture signs requests with Signature V2 under a key made at test time.
type v2Fixture struct {
	ak, sk string
	now    time.Time
	v      *Verifier
}

func newV2Fixture(t *testing.T) *v2Fixture {
	ak, sk := testKeys(t)
	f := &v2Fixture{ak: ak, sk: sk, now: t0}
	f.v = &Verifier{
		Lookup:  func(k string) (string, bool) { return sk, k == ak },
		Now:     func() time.Time { return f.now },
		AllowV2: true,
	}
	return f
}

// header signs r with the Authorization header, dated now (Date header).
func (f *v2Fixture) header(r *Request) *Request {
	c := *r
	c.Header = r.Header.Clone()
	if c.Header == nil {
		c.Header = http.Header{}
	}
	if c.Header.Get("Date") == "" && c.Header.Get("X-Amz-Date") == "" {
		c.Header.Set("Date", f.now.Format(http.TimeFormat))
	}
	c.Header.Set("Authorization", "AWS "+f.ak+":"+SignV2(f.sk, []byte(StringToSignV2(&c, ""))))
	return &c
}

// query presigns r, valid for d.
func (f *v2Fixture) query(r *Request, d time.Duration) *Request {
	c := *r
	c.Header = r.Header.Clone()
	exp := strconv.FormatInt(f.now.Add(d).Unix(), 10)
	sig := SignV2(f.sk, []byte(StringToSignV2(&c, exp)))
	q := "AWSAccessKeyId=" + queryEscapeV2(f.ak) + "&Expires=" + exp + "&Signature=" + queryEscapeV2(sig)
	if c.RawQuery != "" {
		q = c.RawQuery + "&" + q
	}
	c.RawQuery = q
	return &c
}

func v2Base() *Request {
	return &Request{
		Method: "GET", RawPath: "/bucket/a%20b//c%2Fd/./e+f=g~h", Host: "s3.example.com:9000",
		RawQuery: "versionId=3%2B4&response-content-disposition=attachment%3B%20filename%3D%22x.txt%22&response-content-type=text%2Fplain",
		Header:   http.Header{"X-Amz-Meta-Color": {"blue"}},
	}
}

func wantV2Err(t *testing.T, what string, err error, target *Error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, target) || e.Status != target.Status {
		t.Fatalf("%s: %v, want %s (%d)", what, err, target.Code, target.Status)
	}
	return e
}

func TestSigV2Negative(t *testing.T) {
	skipV2InFIPSMode(t)
	f := newV2Fixture(t)
	for _, presigned := range []bool{false, true} {
		sign := func(r *Request) *Request {
			if presigned {
				return f.query(r, time.Hour)
			}
			return f.header(r)
		}
		name := map[bool]string{false: "header", true: "query"}[presigned]
		t.Run(name, func(t *testing.T) {
			good := sign(v2Base())
			if _, err := f.v.Verify(good); err != nil {
				t.Fatalf("signed request: %v", err)
			}
			cases := []struct {
				name   string
				change func(r *Request)
			}{
				{"tampered versionId", func(r *Request) { r.RawQuery = strings.Replace(r.RawQuery, "versionId=3%2B4", "versionId=3%2B5", 1) }},
				{"tampered response-content-type", func(r *Request) {
					r.RawQuery = strings.Replace(r.RawQuery, "text%2Fplain", "text%2Fhtml", 1)
				}},
				{"missing sub-resource", func(r *Request) { r.RawQuery = strings.Replace(r.RawQuery, "versionId=3%2B4&", "", 1) }},
				{"extra sub-resource", func(r *Request) { r.RawQuery += "&acl" }},
				{"extra sub-resource uploads", func(r *Request) { r.RawQuery = "uploads&" + r.RawQuery }},
				{"other path", func(r *Request) { r.RawPath = "/bucket/a%20b/c%2Fd/./e+f=g~h" }},
				{"path re-encoded", func(r *Request) { r.RawPath = strings.Replace(r.RawPath, "%2F", "%2f", 1) }},
				{"other bucket (virtual host)", func(r *Request) { r.Bucket = "other" }},
				{"other method", func(r *Request) { r.Method = "DELETE" }},
				{"tampered x-amz-meta", func(r *Request) { r.Header.Set("X-Amz-Meta-Color", "red") }},
				{"added x-amz header", func(r *Request) { r.Header.Set("X-Amz-Acl", "public-read") }},
				{"added Content-Type", func(r *Request) { r.Header.Set("Content-Type", "text/html") }},
				{"added Content-MD5", func(r *Request) { r.Header.Set("Content-Md5", "1B2M2Y8AsgTpgAmY7PhCfg==") }},
			}
			if !presigned {
				cases = append(cases, struct {
					name   string
					change func(r *Request)
				}{"other Date", func(r *Request) { r.Header.Set("Date", f.now.Add(time.Second).Format(http.TimeFormat)) }})
			} else {
				cases = append(cases, struct {
					name   string
					change func(r *Request)
				}{"later Expires", func(r *Request) {
					exp := strconv.FormatInt(f.now.Add(time.Hour).Unix(), 10)
					r.RawQuery = strings.Replace(r.RawQuery, "Expires="+exp, "Expires="+strconv.FormatInt(f.now.Add(2*time.Hour).Unix(), 10), 1)
				}})
			}
			for _, c := range cases {
				r := *good
				r.Header = good.Header.Clone()
				c.change(&r)
				_, err := f.v.Verify(&r)
				e := wantV2Err(t, c.name, err, ErrSignatureDoesNotMatch)
				if e.StringToSign != StringToSignV2(&r, v2Expires(&r)) {
					t.Errorf("%s: StringToSign %q is not the request's", c.name, e.StringToSign)
				}
			}

			// Parameters that are not sub-resources are not signed in V2:
			// adding one does not break the signature (as on S3).
			r := *good
			r.RawQuery += "&prefix=x&max-keys=1"
			if _, err := f.v.Verify(&r); err != nil {
				t.Errorf("non-sub-resource parameter added: %v", err)
			}

			// Unknown key.
			other := *f
			other.ak = "AKIDUNKNOWN"
			_, err := f.v.Verify((&other).sign(presigned, v2Base()))
			if e := wantV2Err(t, "unknown key", err, ErrInvalidAccessKeyID); e.AccessKeyID != "AKIDUNKNOWN" {
				t.Errorf("unknown key: AccessKeyID %q", e.AccessKeyID)
			}
			// Right key, wrong secret.
			other = *f
			other.sk = "not-the-secret"
			wantV2Err(t, "wrong secret", func() error { _, err := f.v.Verify((&other).sign(presigned, v2Base())); return err }(), ErrSignatureDoesNotMatch)

			// V2 turned off: refused before anything else.
			off := &Verifier{Lookup: f.v.Lookup, Now: f.v.Now}
			_, err = off.Verify(good)
			wantV2Err(t, "V2 off", err, ErrUnsupportedAlgorithm)
		})
	}

	t.Run("expired", func(t *testing.T) {
		r := f.query(v2Base(), time.Minute)
		f2 := &Verifier{Lookup: f.v.Lookup, AllowV2: true, Now: func() time.Time { return f.now.Add(time.Minute + time.Second) }}
		_, err := f2.Verify(r)
		e := wantV2Err(t, "expired", err, ErrExpired)
		if e.Message != "Request has expired" || e.Code != "AccessDenied" {
			t.Errorf("expired: %+v", e)
		}
		if e.detail("Expires") != f.now.Add(time.Minute).UTC().Format(time.RFC3339) || e.detail("ServerTime") == "" {
			t.Errorf("expired details %+v", e.Details)
		}
		// At the second of expiry it is still valid.
		f2.Now = func() time.Time { return f.now.Add(time.Minute) }
		if _, err := f2.Verify(r); err != nil {
			t.Errorf("at Expires: %v", err)
		}
	})

	t.Run("skew", func(t *testing.T) {
		for _, d := range []time.Duration{16 * time.Minute, -16 * time.Minute} {
			r := f.header(&Request{Method: "GET", RawPath: "/b/k", Header: http.Header{"Date": {f.now.Add(d).Format(http.TimeFormat)}}})
			_, err := f.v.Verify(r)
			e := wantV2Err(t, "skewed "+d.String(), err, ErrRequestTimeTooSkewed)
			if e.detail("RequestTime") != r.Header.Get("Date") || e.detail("MaxAllowedSkewMilliseconds") != "900000" {
				t.Errorf("skew details %+v", e.Details)
			}
		}
		for _, d := range []time.Duration{14 * time.Minute, -14 * time.Minute} {
			r := f.header(&Request{Method: "GET", RawPath: "/b/k", Header: http.Header{"X-Amz-Date": {f.now.Add(d).Format(time.RFC1123Z)}}})
			if _, err := f.v.Verify(r); err != nil {
				t.Errorf("x-amz-date %v off: %v", d, err)
			}
		}
		// x-amz-date rules the request time, whatever Date says.
		r := f.header(&Request{Method: "GET", RawPath: "/b/k", Header: http.Header{
			"Date": {f.now.Format(http.TimeFormat)}, "X-Amz-Date": {f.now.Add(-time.Hour).Format(http.TimeFormat)}}})
		wantV2Err(t, "old x-amz-date", func() error { _, err := f.v.Verify(r); return err }(), ErrRequestTimeTooSkewed)
	})

	t.Run("malformed", func(t *testing.T) {
		for _, h := range []string{"AWS ", "AWS key", "AWS key:", "AWS :sig", "AWS key: sig", "AWS a b:c"} {
			r := &Request{Method: "GET", RawPath: "/", Header: http.Header{"Authorization": {h}, "Date": {f.now.Format(http.TimeFormat)}}}
			_, err := f.v.Verify(r)
			e := wantV2Err(t, h, err, ErrV2MalformedHeader)
			if e.detail("ArgumentName") != "Authorization" {
				t.Errorf("%q: details %+v", h, e.Details)
			}
		}
		r := &Request{Method: "GET", RawPath: "/", Header: http.Header{"Authorization": {"AWS " + f.ak + ":c2ln"}}}
		_, err := f.v.Verify(r)
		wantV2Err(t, "no date", err, ErrMissingDate)
		r.Header.Set("Date", "yesterday")
		_, err = f.v.Verify(r)
		wantV2Err(t, "bad date", err, ErrMissingDate)

		for _, q := range []string{
			"AWSAccessKeyId=" + f.ak, "Signature=abc", "AWSAccessKeyId=" + f.ak + "&Signature=abc",
			"AWSAccessKeyId=" + f.ak + "&Expires=1&Signature=", "AWSAccessKeyId=&Expires=1&Signature=x",
		} {
			_, err := f.v.Verify(&Request{Method: "GET", RawPath: "/b/k", RawQuery: q})
			wantV2Err(t, q, err, ErrV2QueryParams)
		}
		for _, exp := range []string{"soon", "-5", "+5", "1e9", "99999999999999999999"} {
			_, err := f.v.Verify(&Request{Method: "GET", RawPath: "/b/k", RawQuery: "AWSAccessKeyId=" + f.ak + "&Expires=" + exp + "&Signature=abc"})
			e := wantV2Err(t, "Expires="+exp, err, &Error{Code: "AccessDenied", Status: 403})
			if !strings.HasPrefix(e.Message, "Invalid date (should be seconds since epoch)") {
				t.Errorf("Expires=%s: %q", exp, e.Message)
			}
		}
		good := f.query(v2Base(), time.Hour)
		dup := *good
		dup.RawQuery += "&Signature=abc"
		_, err = f.v.Verify(&dup)
		wantV2Err(t, "two signatures", err, &Error{Code: "AuthorizationQueryParametersError", Status: 400})
		both := *good
		both.Header = good.Header.Clone()
		both.Header.Set("Authorization", "AWS "+f.ak+":abc")
		_, err = f.v.Verify(&both)
		wantV2Err(t, "header and query", err, ErrMultipleAuth)
	})

	t.Run("unencoded plus in signature", func(t *testing.T) {
		// Find a request whose signature has a '+', and send it raw.
		for i := 0; ; i++ {
			r := f.query(&Request{Method: "GET", RawPath: "/b/k" + strconv.Itoa(i)}, time.Hour)
			if !strings.Contains(r.RawQuery, "%2B") {
				continue
			}
			r.RawQuery = strings.ReplaceAll(r.RawQuery, "%2B", "+")
			if _, err := f.v.Verify(r); err != nil {
				t.Fatalf("%s: %v", r.RawQuery, err)
			}
			return
		}
	})
}

func (f *v2Fixture) sign(presigned bool, r *Request) *Request {
	if presigned {
		return f.query(r, time.Hour)
	}
	return f.header(r)
}

// TestSigV2Canonical pins the parts of the string to sign where signers
// could differ.
func TestSigV2Canonical(t *testing.T) {
	h := http.Header{
		"Content-Type":          {" text/plain "},
		"Content-Md5":           {"1B2M2Y8AsgTpgAmY7PhCfg=="},
		"X-Amz-Meta-B":          {" two  spaces ", "second"},
		"x-amz-meta-a":          {"folded\r\n   line"},
		"X-Amz-Meta-C":          {"x"},
		"Date":                  {"Tue, 27 Mar 2007 21:06:08 +0000"},
		"User-Agent":            {"ignored"},
		"Content-Disposition":   {"ignored"},
		"X-Amz-Content-Sha256":  {UnsignedPayload},
		"X-Amz-Server-Side-Enc": {"AES256"},
	}
	r := &Request{Method: "PUT", RawPath: "/k%2Fx", Bucket: "vh", RawQuery: "uploadId=a%2Bb&partNumber=2&x-id=PutObject&tagging&prefix=z", Header: h}
	want := "PUT\n1B2M2Y8AsgTpgAmY7PhCfg==\ntext/plain\nTue, 27 Mar 2007 21:06:08 +0000\n" +
		"x-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-meta-a:folded line\nx-amz-meta-b:two  spaces,second\nx-amz-meta-c:x\nx-amz-server-side-enc:AES256\n" +
		"/vh/k%2Fx?partNumber=2&tagging&uploadId=a+b"
	if got := StringToSignV2(r, ""); got != want {
		t.Errorf("string to sign\n%q\nwant\n%q", got, want)
	}
	// Query authentication: Expires in the Date line; x-amz-* and
	// content-type query parameters stand in for absent headers only.
	q := &Request{Method: "PUT", RawPath: "/b/k", RawQuery: "content-type=image%2Fpng&x-amz-meta-foo=bar&x-amz-acl=private", Header: http.Header{"X-Amz-Acl": {"public-read"}, "Date": {"ignored"}}}
	want = "PUT\n\nimage/png\n1700000000\nx-amz-acl:public-read\nx-amz-meta-foo:bar\n/b/k"
	if got := StringToSignV2(q, "1700000000"); got != want {
		t.Errorf("query string to sign\n%q\nwant\n%q", got, want)
	}
	// Sub-resources: sorted by name, bare when empty, values decoded.
	s := &Request{Method: "GET", RawPath: "/b/", RawQuery: "versions&delete=&response-expires=Thu%2C%2001%20Dec%201994&acl", Header: http.Header{"Date": {"d"}}}
	want = "GET\n\n\nd\n/b/?acl&delete&response-expires=Thu, 01 Dec 1994&versions"
	if got := StringToSignV2(s, ""); got != want {
		t.Errorf("sub-resources\n%q\nwant\n%q", got, want)
	}
	if !slices.IsSorted(v2SubResources) {
		t.Error("v2SubResources is not sorted")
	}
}

// TestSigV2Body: the payload is checked as with SigV4 (Content-MD5, a
// signed x-amz-content-sha256, x-amz-checksum-*).
func TestSigV2Body(t *testing.T) {
	skipV2InFIPSMode(t)
	f := newV2Fixture(t)
	body := []byte("hello, signature v2")
	sum := md5.Sum(body)
	md := base64.StdEncoding.EncodeToString(sum[:])
	for _, presigned := range []bool{false, true} {
		r := f.sign(presigned, &Request{Method: "PUT", RawPath: "/b/k", Header: http.Header{"Content-Md5": {md}, "Content-Type": {"text/plain"}}})
		a, err := f.v.Verify(r)
		if err != nil {
			t.Fatal(err)
		}
		if a.ContentMD5 != md || a.PayloadHash != UnsignedPayload {
			t.Fatalf("auth %+v", a)
		}
		rd, _ := a.Body(bytes.NewReader(body), int64(len(body)))
		if got, err := io.ReadAll(rd); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("body: %v", err)
		}
		rd, _ = a.Body(bytes.NewReader(append([]byte("X"), body[1:]...)), int64(len(body)))
		if _, err := io.ReadAll(rd); !errors.Is(err, ErrContentMD5Mismatch) {
			t.Errorf("tampered body: %v, want BadDigest", err)
		}
	}
	// Content-MD5 signed in the query of a presigned URL and not sent as a
	// header is still enforced.
	r := f.query(&Request{Method: "PUT", RawPath: "/b/k", RawQuery: "content-md5=" + queryEscapeV2(md)}, time.Hour)
	a, err := f.v.Verify(r)
	if err != nil || a.ContentMD5 != md {
		t.Fatalf("query content-md5: %v %+v", err, a)
	}
	// A signed x-amz-content-sha256 is verified.
	r = f.header(&Request{Method: "PUT", RawPath: "/b/k", Header: http.Header{"X-Amz-Content-Sha256": {EmptySHA256}}})
	a, err = f.v.Verify(r)
	if err != nil || a.PayloadHash != EmptySHA256 {
		t.Fatalf("x-amz-content-sha256: %v %+v", err, a)
	}
	rd, _ := a.Body(bytes.NewReader(body), int64(len(body)))
	if _, err := io.ReadAll(rd); !errors.Is(err, ErrContentSHA256Mismatch) {
		t.Errorf("body against x-amz-content-sha256 of empty: %v", err)
	}
	r = f.header(&Request{Method: "PUT", RawPath: "/b/k", Header: http.Header{"X-Amz-Content-Sha256": {StreamingPayload}}})
	if _, err := f.v.Verify(r); !errors.Is(err, ErrUnsupportedPayload) {
		t.Errorf("streaming payload with V2: %v", err)
	}
}

// botocoreV2Script drives botocore's own Signature V2 signers against a test
// server: a boto3 client configured with signature_version "s3"
// (HmacV1Auth) runs real operations, generate_presigned_url (HmacV1QueryAuth,
// boto3's default for S3 in us-east-1) makes URLs that urllib then fetches,
// and HmacV1Auth signs virtual-hosted requests (auth_path) sent by
// http.client with their Host header. Every request must verify on the
// server; the script prints one line per call and exits non-zero if the
// server refused any.
const botocoreV2Script = `
import json, os, sys, http.client, urllib.request, urllib.parse
import boto3, botocore
from botocore.config import Config
from botocore.auth import HmacV1Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint = sys.argv[1]
ak, sk = os.environ["V2_AK"], os.environ["V2_SK"]
host = urllib.parse.urlsplit(endpoint).netloc
failures = []

def client(sig):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
        region_name="us-east-1", config=Config(signature_version=sig, s3={"addressing_style": "path"},
        retries={"total_max_attempts": 1}))

def call(name, fn):
    try:
        fn()
        print("ok", name)
    except botocore.exceptions.ClientError as e:
        code = e.response["Error"]["Code"]
        st = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if st == 403 or st == 400:
            failures.append(name); print("FAIL", name, st, code)
        else:
            print("ok", name, "(response", st, code + ")")
    except Exception as e:  # our server's bodies do not always parse
        print("ok", name, "(client:", type(e).__name__ + ")")

s3 = client("s3")
keys = ["plain.txt", "a b/c+d~e.txt", "dir//x/./y", "unicode-\u00e9\u00e8\u4e2d.bin", "q?x=y&z", "pct%2Fslash", "eq=1;semi,comma"]
for k in keys:
    call("put " + k, lambda: s3.put_object(Bucket="bkt", Key=k, Body=b"data " + k.encode(), ContentType="text/plain",
        Metadata={"color": "blue", "Mixed-Case": "v  with  spaces"}))
    call("put-md5 " + k, lambda: s3.put_object(Bucket="bkt", Key=k, Body=b"md5 body", ContentMD5="W9Vk3MjNBMgbOEd+Z+AF3w=="))
    call("get " + k, lambda: s3.get_object(Bucket="bkt", Key=k, Range="bytes=0-1"))
    call("get-overrides " + k, lambda: s3.get_object(Bucket="bkt", Key=k, ResponseContentDisposition='attachment; filename="a b+c.txt"',
        ResponseContentType="text/plain; charset=utf-8", ResponseCacheControl="no-cache", ResponseExpires="Thu, 01 Dec 1994 16:00:00 GMT"))
    call("get-version " + k, lambda: s3.get_object(Bucket="bkt", Key=k, VersionId="3/L4kqtJl40Nr8X8gdRQBpUMLUo+=x"))
    call("head " + k, lambda: s3.head_object(Bucket="bkt", Key=k))
    call("acl " + k, lambda: s3.get_object_acl(Bucket="bkt", Key=k))
    call("tagging " + k, lambda: s3.put_object_tagging(Bucket="bkt", Key=k, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}))
    call("copy " + k, lambda: s3.copy_object(Bucket="bkt", Key=k + ".copy", CopySource={"Bucket": "bkt", "Key": k}, MetadataDirective="REPLACE", Metadata={"x": "y"}))
    call("delete " + k, lambda: s3.delete_object(Bucket="bkt", Key=k))
call("create-multipart", lambda: s3.create_multipart_upload(Bucket="bkt", Key="mp", ContentType="application/x-tar", Metadata={"m": "1"}))
call("upload-part", lambda: s3.upload_part(Bucket="bkt", Key="mp", UploadId="abc+/=def", PartNumber=3, Body=b"part"))
call("list-parts", lambda: s3.list_parts(Bucket="bkt", Key="mp", UploadId="abc+/=def"))
call("complete", lambda: s3.complete_multipart_upload(Bucket="bkt", Key="mp", UploadId="abc+/=def",
    MultipartUpload={"Parts": [{"PartNumber": 3, "ETag": '"x"'}]}))
call("abort", lambda: s3.abort_multipart_upload(Bucket="bkt", Key="mp", UploadId="abc+/=def"))
call("list-uploads", lambda: s3.list_multipart_uploads(Bucket="bkt"))
call("list", lambda: s3.list_objects(Bucket="bkt", Prefix="a b/", Delimiter="/", MaxKeys=5))
call("list-v2", lambda: s3.list_objects_v2(Bucket="bkt", Prefix="x", StartAfter="a"))
call("list-versions", lambda: s3.list_object_versions(Bucket="bkt"))
call("location", lambda: s3.get_bucket_location(Bucket="bkt"))
call("versioning", lambda: s3.get_bucket_versioning(Bucket="bkt"))
call("delete-objects", lambda: s3.delete_objects(Bucket="bkt", Delete={"Objects": [{"Key": "a"}, {"Key": "b c"}]}))
call("list-buckets", lambda: s3.list_buckets())

# Presigned URLs with the default configuration (no signature_version).
default = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1")
def fetch(name, method, url, body=None, headers={}):
    # http.client sends only the headers given (urllib would add a
    # Content-Type to a PUT with a body, and S3 would refuse it too).
    if "AWSAccessKeyId=" not in url or "Signature=" not in url or "Expires=" not in url:
        failures.append(name); print("FAIL", name, "not a V2 URL:", url); return
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.netloc)
    c.putrequest(method, u.path + "?" + u.query, skip_accept_encoding=True)
    for hk, hv in headers.items():
        c.putheader(hk, hv)
    if body is not None:
        c.putheader("Content-Length", str(len(body)))
    c.endheaders(body)
    resp = c.getresponse(); data = resp.read()
    if resp.status >= 400:
        failures.append(name); print("FAIL", name, resp.status, data[:300])
    else:
        print("ok", name)
for k in keys:
    fetch("presigned get " + k, "GET", default.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": k}))
    fetch("presigned head " + k, "HEAD", default.generate_presigned_url("head_object", Params={"Bucket": "bkt", "Key": k}))
    fetch("presigned put " + k, "PUT", default.generate_presigned_url("put_object", Params={"Bucket": "bkt", "Key": k}), b"presigned body")
    fetch("presigned delete " + k, "DELETE", default.generate_presigned_url("delete_object", Params={"Bucket": "bkt", "Key": k}))
    fetch("presigned get-overrides " + k, "GET", default.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": k,
        "ResponseContentDisposition": 'attachment; filename="r\u00e9sum\u00e9 1+1.pdf"', "ResponseContentType": "application/pdf", "VersionId": "v+1/2"}))
    # ContentType and Metadata go into the query; the uploader sends them as headers, or not.
    url = default.generate_presigned_url("put_object", Params={"Bucket": "bkt", "Key": k, "ContentType": "text/csv", "Metadata": {"who": "me"}})
    fetch("presigned put-typed+headers " + k, "PUT", url, b"a,b", {"Content-Type": "text/csv", "x-amz-meta-who": "me"})
    fetch("presigned put-typed " + k, "PUT", url, b"a,b")

# Virtual-hosted style: the bucket is in Host and signed via auth_path.
auth = HmacV1Auth(Credentials(ak, sk))
for k in ["plain.txt", "a%20b/c%2Bd", ""]:
    for q in ["", "?acl", "?uploadId=u%2B1&partNumber=1", "?response-content-type=text%2Fplain&prefix=p"]:
        name = "virtual " + k + q
        r = AWSRequest(method="GET", url="http://bkt.v2.test/" + k + q, headers={"x-amz-meta-x": "1"})
        r.auth_path = "/bkt/" + k
        auth.add_auth(r)
        c = http.client.HTTPConnection(host)
        c.putrequest("GET", "/" + k + q, skip_host=True, skip_accept_encoding=True)
        c.putheader("Host", "bkt.v2.test")
        for hk, hv in r.headers.items():
            c.putheader(hk, hv)
        c.endheaders()
        resp = c.getresponse(); resp.read()
        if resp.status >= 400:
            failures.append(name); print("FAIL", name, resp.status)
        else:
            print("ok", name)

print(json.dumps({"failures": failures}))
sys.exit(1 if failures else 0)
`

// v2Server verifies every request with Signature V2 and reads its body
// through Auth.Body.
type v2Server struct {
	t        *testing.T
	v        *Verifier
	mu       sync.Mutex
	verified int
	kinds    map[string]int
	failed   []string
}

func (s *v2Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rawPath, rawQuery, _ := strings.Cut(req.RequestURI, "?")
	h := req.Header.Clone()
	if req.ContentLength >= 0 && req.Method != "GET" && req.Method != "HEAD" {
		h.Set("Content-Length", strconv.FormatInt(req.ContentLength, 10))
	}
	r := &Request{Method: req.Method, RawPath: rawPath, RawQuery: rawQuery, Host: req.Host, Header: h}
	if b, ok := strings.CutSuffix(req.Host, ".v2.test"); ok {
		r.Bucket = b
	}
	a, err := s.v.Verify(r)
	if err == nil {
		var rd io.Reader
		if rd, err = a.Body(req.Body, req.ContentLength); err == nil {
			_, err = io.Copy(io.Discard, rd)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		var e *Error
		errors.As(err, &e)
		s.failed = append(s.failed, fmt.Sprintf("%s %s: %v\nstring to sign %q", req.Method, req.RequestURI, err, e.StringToSign))
		w.WriteHeader(403)
		fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message></Error>", e.Code, e.Message)
		return
	}
	s.verified++
	kind := map[bool]string{false: "header", true: "query"}[a.Presigned]
	if r.Bucket != "" {
		kind = "virtual"
	}
	s.kinds[kind]++
	if req.Method == "HEAD" {
		w.Header().Set("Content-Length", "0")
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><R></R>`)
}

// TestSigV2Botocore: requests signed by botocore's V2 signers (HmacV1Auth,
// HmacV1QueryAuth) verify with ours.
func TestSigV2Botocore(t *testing.T) {
	skipV2InFIPSMode(t)
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		t.Fatalf("python3 with boto3 is required: %v", err)
	}
	ak, sk := testKeys(t)
	s := &v2Server{t: t, kinds: map[string]int{}, v: &Verifier{
		Lookup: func(k string) (string, bool) { return sk, k == ak }, AllowV2: true,
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	cmd := exec.Command("python3", "-c", botocoreV2Script, srv.URL)
	cmd.Env = append(os.Environ(), "V2_AK="+ak, "V2_SK="+sk, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.failed {
		t.Errorf("server refused: %s", f)
	}
	if err != nil {
		t.Fatalf("botocore script: %v\n%s", err, out)
	}
	t.Logf("verified %d requests %v", s.verified, s.kinds)
	if s.kinds["header"] < 80 || s.kinds["query"] < 45 || s.kinds["virtual"] != 12 {
		t.Errorf("verified %v; expected at least 80 header-signed, 45 presigned, 12 virtual-hosted\n%s", s.kinds, out)
	}
}

// FuzzSigV2 checks the Signature V2 parser and canonicalizer on arbitrary
// input: typed errors only, the Authorization header round-trips, and any
// request signed by StringToSignV2/SignV2 verifies (header and query forms)
// while a changed signature does not. Seeds beyond f.Add live in
// testdata/fuzz/FuzzSigV2/.
func FuzzSigV2(f *testing.F) {
	skipV2InFIPSMode(f)
	// AKIAIOSFODNN7EXAMPLE is the example key of AWS's S3 documentation
	// (the published test vectors), not a credential.
	f.Add("AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=", "/johnsmith/photos/puppy.jpg", "acl&versionId=1", "v")
	f.Add("AWS a:b:c", "/b", "uploadId=x%2By&partNumber=1&uploads", "x\r\n  y")
	f.Add("AWS  :", "/", "response-content-disposition=a%3Bb&prefix=%zz", "")
	f.Add("AWS4-HMAC-SHA256 Credential=x", "//a/./b", "AWSAccessKeyId=k&Expires=1&Signature=s", " ")
	f.Add("AWS k:", "/b/k%2F", "x-amz-meta-a=1&content-type=t&Expires=", "a,b")
	f.Fuzz(func(t *testing.T, authz, path, query, value string) {
		typed := func(what string, err error) {
			var e *Error
			if err != nil && (!errors.As(err, &e) || e.Code == "" || e.Status == 0) {
				t.Fatalf("%s: untyped error %v", what, err)
			}
		}
		ak, sig, err := ParseV2Authorization(authz)
		typed("ParseV2Authorization", err)
		if err == nil {
			if ak == "" || sig == "" || strings.ContainsAny(ak+sig, " \t") {
				t.Fatalf("%q parsed to %q %q", authz, ak, sig)
			}
			ak2, sig2, err := ParseV2Authorization("AWS " + ak + ":" + sig)
			if err != nil || ak2 != ak || sig2 != sig {
				t.Fatalf("round trip of %q: %q %q %v", authz, ak2, sig2, err)
			}
		}

		fx := &v2Fixture{ak: "AKIDFUZZ", sk: "fuzz-secret", now: t0}
		fx.v = &Verifier{Lookup: func(k string) (string, bool) { return fx.sk, k == fx.ak }, Now: func() time.Time { return t0 }, AllowV2: true}
		path = "/" + strings.ReplaceAll(path, "?", "%3F")
		h := http.Header{"Authorization": {authz}, "Date": {t0.Format(http.TimeFormat)}, "X-Amz-Meta-F": {value}}
		_, err = fx.v.Verify(&Request{Method: "GET", RawPath: path, RawQuery: query, Header: h})
		typed("Verify", err)

		for _, p := range parseQuery(query) {
			switch p.name {
			case v2QueryAccessKey, v2QuerySignature, v2QueryExpires, queryAlgorithm, queryCredential, querySignature:
				return // would not be a request of one auth form
			}
		}
		for _, presigned := range []bool{false, true} {
			r := fx.sign(presigned, &Request{Method: "PUT", RawPath: path, RawQuery: query, Header: http.Header{"X-Amz-Meta-F": {value}}})
			a, err := fx.v.Verify(r)
			if errors.Is(err, ErrV2UnsignedParameter) {
				// A parameter V2 leaves unsigned that could change the
				// operation: refused whatever the signature (TestV2Bounds).
				if checkV2Params(parseQuery(r.RawQuery)) == nil {
					t.Fatalf("self-signed (presigned %v) %q ? %q: refused as unsigned, but every parameter is allowed", presigned, path, r.RawQuery)
				}
				continue
			}
			if err != nil {
				t.Fatalf("self-signed (presigned %v) %q ? %q: %v", presigned, path, r.RawQuery, err)
			}
			if a.Presigned != presigned || a.AccessKey != fx.ak {
				t.Fatalf("auth %+v", a)
			}
			// Another method never verifies.
			r.Method = "POST"
			if _, err := fx.v.Verify(r); !errors.Is(err, ErrSignatureDoesNotMatch) {
				t.Fatalf("method changed: %v", err)
			}
		}
	})
}

// TestV2Bounds: a V2 presigned URL expires at most 7 days ahead, and a V2
// request with a query parameter that V2 does not sign and that could change
// the operation is refused, however it is authenticated.
func TestV2Bounds(t *testing.T) {
	skipV2InFIPSMode(t)
	f := newV2Fixture(t)
	if _, err := f.v.Verify(f.query(v2Base(), 7*24*time.Hour)); err != nil {
		t.Errorf("7 days: %v", err)
	}
	for _, d := range []time.Duration{7*24*time.Hour + 16*time.Minute, 100 * 365 * 24 * time.Hour} {
		_, err := f.v.Verify(f.query(v2Base(), d))
		wantV2Err(t, "expires in "+d.String(), err, ErrV2ExpiryTooFar)
	}
	for _, q := range []string{"publicAccessBlock", "ownershipControls", "intelligent-tiering&id=x", "attributes", "unknown=1"} {
		r := &Request{Method: "PUT", RawPath: "/bucket", RawQuery: q, Header: http.Header{}}
		for name, signed := range map[string]*Request{"header": f.header(r), "query": f.query(r, time.Hour)} {
			_, err := f.v.Verify(signed)
			e := wantV2Err(t, name+" ?"+q, err, ErrV2UnsignedParameter)
			if want := strings.Split(strings.Split(q, "&")[0], "=")[0]; e.detail("Parameter") != want {
				t.Errorf("%s ?%s: Parameter %q, want %q", name, q, e.detail("Parameter"), want)
			}
		}
	}
	// Listing and pagination parameters, botocore's x-id and header
	// stand-ins cannot change the operation: they pass.
	for _, q := range []string{"prefix=a&delimiter=%2F&max-keys=10&marker=m", "list-type=2&continuation-token=t&start-after=s",
		"uploads&max-uploads=5&key-marker=k", "x-id=GetObject", "x-amz-meta-who=me&Content-Type=text%2Fplain"} {
		r := &Request{Method: "GET", RawPath: "/bucket/", RawQuery: q, Header: http.Header{}}
		for name, signed := range map[string]*Request{"header": f.header(r), "query": f.query(r, time.Hour)} {
			if _, err := f.v.Verify(signed); err != nil {
				t.Errorf("%s ?%s: %v", name, q, err)
			}
		}
	}
}
