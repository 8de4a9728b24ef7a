package sigv4

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// An empty Content-MD5 is InvalidDigest, as S3 answers, not "no digest".
func TestEmptyContentMD5(t *testing.T) {
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	s := &Signer{AccessKey: "AK", SecretKey: "secret", Region: "us-east-1", Service: "s3"}
	v := &Verifier{Lookup: func(string) (string, bool) { return "secret", true }, Now: func() time.Time { return now }}
	for name, md5 := range map[string]string{"empty": "", "blank": "  "} {
		r := &Request{Method: "PUT", RawPath: "/b/k", Host: "h", Header: http.Header{"Content-Md5": {md5}}}
		for k, vs := range s.Sign(r, UnsignedPayload, now) {
			r.Header[k] = vs
		}
		if _, err := v.Verify(r); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("%s Content-MD5: %v, want InvalidDigest", name, err)
		}
	}
}
