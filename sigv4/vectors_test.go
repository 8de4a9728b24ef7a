package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The AWS SigV4 test suite from awslabs/aws-c-auth
// (tests/aws-signing-test-suite/v4), the cases whose canonical URI is the
// path as sent: see testdata/sigv4/aws-c-auth/README.md.
const suiteDir = "../testdata/sigv4/aws-c-auth/v4"

type suiteContext struct {
	Credentials struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
		Token           string `json:"token"`
	} `json:"credentials"`
	Expiration       int64     `json:"expiration_in_seconds"`
	Normalize        bool      `json:"normalize"`
	Region           string    `json:"region"`
	Service          string    `json:"service"`
	SignBody         bool      `json:"sign_body"`
	Timestamp        time.Time `json:"timestamp"`
	OmitSessionToken bool      `json:"omit_session_token"`
}

type suiteCase struct {
	name string
	ctx  suiteContext
	dir  string
}

func (c suiteCase) file(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadSuite(t *testing.T) []suiteCase {
	t.Helper()
	dirs, err := os.ReadDir(suiteDir)
	if err != nil {
		t.Fatal(err)
	}
	var cases []suiteCase
	for _, d := range dirs {
		c := suiteCase{name: d.Name(), dir: filepath.Join(suiteDir, d.Name())}
		if err := json.Unmarshal([]byte(c.file(t, "context.json")), &c.ctx); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	if len(cases) < 30 {
		t.Fatalf("only %d suite cases found", len(cases))
	}
	return cases
}

// escapePath escapes a path from the suite's request files the way a client
// puts it on the wire: every byte but unreserved ones and '/' as %XX.
func escapePath(p string) string {
	var b []byte
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '/' || unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hexUpper[c>>4], hexUpper[c&15])
		}
	}
	return string(b)
}

// parseHTTP parses a suite request file: request line, headers (with
// obsolete line folding), blank line, body.
func parseHTTP(t *testing.T, s string) (*Request, []byte) {
	t.Helper()
	head, body, _ := strings.Cut(s, "\n\n")
	lines := strings.Split(head, "\n")
	first := lines[0]
	sp := strings.IndexByte(first, ' ')
	end := strings.LastIndex(first, " HTTP/")
	if sp < 0 || end < sp {
		t.Fatalf("bad request line %q", first)
	}
	target := first[sp+1 : end]
	path, query, _ := strings.Cut(target, "?")
	r := &Request{Method: first[:sp], RawPath: escapePath(path), RawQuery: query, Header: http.Header{}}
	var last string
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			vals := r.Header[last]
			vals[len(vals)-1] += " " + strings.TrimSpace(l)
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("bad header line %q", l)
		}
		if strings.EqualFold(k, "host") {
			r.Host = v
			continue
		}
		last = http.CanonicalHeaderKey(k)
		r.Header[last] = append(r.Header[last], v)
	}
	return r, []byte(body)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// signedHeaderList extracts the signed header names from a signed request
// (Authorization header or X-Amz-SignedHeaders).
func signedHeaderList(t *testing.T, r *Request, query bool) []string {
	t.Helper()
	if query {
		for _, p := range parseQuery(r.RawQuery) {
			if p.name == querySignedHeaders {
				names, _ := parseSignedHeaders(p.value)
				return names
			}
		}
		t.Fatal("no X-Amz-SignedHeaders")
	}
	f, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	return f.signedHeaders
}

func TestSuiteSign(t *testing.T) {
	for _, c := range loadSuite(t) {
		t.Run(c.name, func(t *testing.T) {
			ctx := c.ctx
			s := &Signer{AccessKey: ctx.Credentials.AccessKeyID, SecretKey: ctx.Credentials.SecretAccessKey,
				Region: ctx.Region, Service: ctx.Service}
			payload := EmptySHA256
			r, body := parseHTTP(t, c.file(t, "request.txt"))
			if ctx.SignBody {
				payload = sha256Hex(body)
			}
			amzDate := formatAmzDate(ctx.Timestamp)

			// Header signing: the suite adds X-Amz-Date, the session token
			// (unless omitted) and, when signing the body, x-amz-content-sha256.
			signed, _ := parseHTTP(t, c.file(t, "header-signed-request.txt"))
			names := signedHeaderList(t, signed, false)
			hr := *r
			hr.Header = r.Header.Clone()
			hr.Header.Set("X-Amz-Date", amzDate)
			if ctx.Credentials.Token != "" && !ctx.OmitSessionToken {
				hr.Header.Set("X-Amz-Security-Token", ctx.Credentials.Token)
			}
			if ctx.SignBody {
				hr.Header.Set("X-Amz-Content-Sha256", payload)
			}
			sig, canon, sts := s.signWith(&hr, amzDate, names, requestHeaders{&hr},
				appendCanonicalQuery(nil, parseQuery(hr.RawQuery), ""), payload)
			if got, want := string(canon), c.file(t, "header-canonical-request.txt"); got != want {
				t.Errorf("header canonical request:\n%s\nwant:\n%s", got, want)
			}
			if got, want := string(sts), c.file(t, "header-string-to-sign.txt"); got != want {
				t.Errorf("header string to sign:\n%s\nwant:\n%s", got, want)
			}
			if want := c.file(t, "header-signature.txt"); sig != want {
				t.Errorf("header signature %s, want %s", sig, want)
			}
			if want := signed.Header.Get("Authorization"); !strings.HasSuffix(want, "Signature="+sig) {
				t.Errorf("Authorization %q does not carry %s", want, sig)
			}

			// Query signing.
			if ctx.OmitSessionToken {
				return // the token is in the URL but not signed: not something S3 does
			}
			qs, _ := parseHTTP(t, c.file(t, "query-signed-request.txt"))
			qnames := signedHeaderList(t, qs, true)
			if ctx.Credentials.Token != "" {
				s.SessionToken = ctx.Credentials.Token
			}
			q, canon, sts := s.presignWith(r, time.Duration(ctx.Expiration)*time.Second, ctx.Timestamp, qnames, payload)
			if got, want := string(canon), c.file(t, "query-canonical-request.txt"); got != want {
				t.Errorf("query canonical request:\n%s\nwant:\n%s", got, want)
			}
			if got, want := string(sts), c.file(t, "query-string-to-sign.txt"); got != want {
				t.Errorf("query string to sign:\n%s\nwant:\n%s", got, want)
			}
			want := c.file(t, "query-signature.txt")
			if !strings.HasSuffix(q, "&X-Amz-Signature="+want) {
				t.Errorf("presigned query %q, want signature %s", q, want)
			}
			if CanonicalQuery(q) != CanonicalQuery(qs.RawQuery) {
				t.Errorf("presigned query %q\nwant same parameters as %q", q, qs.RawQuery)
			}
		})
	}
}

func TestSuiteVerify(t *testing.T) {
	for _, c := range loadSuite(t) {
		t.Run(c.name, func(t *testing.T) {
			ctx := c.ctx
			v := &Verifier{
				Lookup: func(ak string) (string, bool) {
					if ak == ctx.Credentials.AccessKeyID {
						return ctx.Credentials.SecretAccessKey, true
					}
					return "", false
				},
				Region:  ctx.Region,
				Service: ctx.Service,
				Now:     func() time.Time { return ctx.Timestamp.Add(time.Minute) },
			}
			r, body := parseHTTP(t, c.file(t, "header-signed-request.txt"))
			a, err := v.Verify(r)
			if ctx.OmitSessionToken {
				// The token header is present but unsigned: S3 refuses that.
				if !errors.Is(err, ErrUnsignedHeaders) {
					t.Fatalf("header auth with unsigned token: %v, want %v", err, ErrUnsignedHeaders)
				}
			} else {
				if err != nil {
					t.Fatalf("header auth: %v", err)
				}
				if a.AccessKey != ctx.Credentials.AccessKeyID || a.Presigned || a.Region != ctx.Region {
					t.Errorf("auth %+v", a)
				}
				rd, err := a.Body(bytes.NewReader(body), int64(len(body)))
				if err != nil {
					t.Fatal(err)
				}
				if got, err := io.ReadAll(rd); err != nil || !bytes.Equal(got, body) {
					t.Errorf("body %q, %v", got, err)
				}
			}
			// Tampered: another secret.
			v2 := &Verifier{Region: v.Region, Service: v.Service, Now: v.Now,
				Lookup: func(string) (string, bool) { return "not-the-secret", true }}
			if _, err := v2.Verify(r); !errors.Is(err, ErrSignatureDoesNotMatch) && !ctx.OmitSessionToken {
				t.Errorf("wrong secret: %v", err)
			}

			// Presigned. The generic suite signs the body hash where S3 signs
			// UNSIGNED-PAYLOAD, so the payload rule is overridden here.
			payload := EmptySHA256
			if ctx.SignBody {
				payload = sha256Hex(body)
			}
			qr, _ := parseHTTP(t, c.file(t, "query-signed-request.txt"))
			a, err = v.verifyPresigned(qr, parseQuery(qr.RawQuery), payload)
			if ctx.OmitSessionToken {
				// X-Amz-Security-Token is in the URL but was left out of the
				// signature: S3 signs every parameter but X-Amz-Signature.
				if !errors.Is(err, ErrSignatureDoesNotMatch) {
					t.Fatalf("presigned with unsigned token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("presigned: %v", err)
			}
			if !a.Presigned || a.PayloadHash != UnsignedPayload {
				t.Errorf("presigned auth %+v", a)
			}
			// Through Verify, S3's rule (UNSIGNED-PAYLOAD) applies and the
			// suite's signature no longer matches.
			if _, err := v.Verify(qr); !errors.Is(err, ErrSignatureDoesNotMatch) {
				t.Errorf("Verify of suite presigned request: %v, want SignatureDoesNotMatch", err)
			}
			// Expired.
			v3 := &Verifier{Lookup: v.Lookup, Region: v.Region, Service: v.Service,
				Now: func() time.Time { return ctx.Timestamp.Add(time.Duration(ctx.Expiration+1) * time.Second) }}
			if _, err := v3.verifyPresigned(qr, parseQuery(qr.RawQuery), payload); !errors.Is(err, ErrExpired) {
				t.Errorf("expired: %v", err)
			}
		})
	}
}
