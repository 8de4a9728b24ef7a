package sigv4

import (
	"crypto/fips140"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

func policyB64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const testPolicy = `{"expiration":"2026-12-05T01:00:00.000Z","conditions":[
{"bucket":"b"},["starts-with","$key","user/"],["content-length-range",1,10],
["eq","$Content-Type","text/plain"],{"x-amz-meta-tag":"v"},["starts-with","$success_action_status",""]]}`

func TestPostPolicyCheck(t *testing.T) {
	p, err := ParsePostPolicy(policyB64(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 5, 0, 30, 0, 0, time.UTC)
	good := func() map[string]string {
		return map[string]string{"bucket": "b", "key": "user/a", "content-type": "text/plain", "x-amz-meta-tag": "v",
			"policy": "x", "x-amz-signature": "s", "success_action_status": "201"}
	}
	if err := p.Check(good(), now); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit func(map[string]string)
		now  time.Time
	}{
		"expired":      {func(map[string]string) {}, now.Add(time.Hour)},
		"bucket":       {func(f map[string]string) { f["bucket"] = "c" }, now},
		"key prefix":   {func(f map[string]string) { f["key"] = "other/a" }, now},
		"content-type": {func(f map[string]string) { f["content-type"] = "text/html" }, now},
		"meta":         {func(f map[string]string) { f["x-amz-meta-tag"] = "w" }, now},
		"meta missing": {func(f map[string]string) { delete(f, "x-amz-meta-tag") }, now},
		"extra field":  {func(f map[string]string) { f["x-amz-meta-other"] = "1" }, now},
	} {
		t.Run(name, func(t *testing.T) {
			f := good()
			tc.edit(f)
			err := p.Check(f, tc.now)
			if !errors.Is(err, &Error{Code: "AccessDenied"}) {
				t.Fatalf("got %v, want AccessDenied", err)
			}
		})
	}
	f := good()
	f["x-ignore-me"] = "1"
	if err := p.Check(f, now); err != nil {
		t.Fatalf("x-ignore-: %v", err)
	}
	for n, want := range map[int64]error{0: ErrPostEntityTooSmall, 1: nil, 10: nil, 11: ErrPostEntityTooLarge} {
		if err := p.CheckLength(n); err != want {
			t.Errorf("length %d: %v, want %v", n, err, want)
		}
	}
}

func TestParsePostPolicyInvalid(t *testing.T) {
	for name, doc := range map[string]string{
		"json":        `{`,
		"no expiry":   `{"conditions":[]}`,
		"bad expiry":  `{"expiration":"tomorrow","conditions":[]}`,
		"no conds":    `{"expiration":"2026-12-05T01:00:00Z"}`,
		"bad op":      `{"expiration":"2026-12-05T01:00:00Z","conditions":[["like","$key","a"]]}`,
		"bad range":   `{"expiration":"2026-12-05T01:00:00Z","conditions":[["content-length-range",5,1]]}`,
		"two fields":  `{"expiration":"2026-12-05T01:00:00Z","conditions":[{"a":"1","b":"2"}]}`,
		"no dollar":   `{"expiration":"2026-12-05T01:00:00Z","conditions":[["eq","key","a"]]}`,
		"short array": `{"expiration":"2026-12-05T01:00:00Z","conditions":[["eq","$key"]]}`,
	} {
		if _, err := ParsePostPolicy(policyB64(doc)); !errors.Is(err, &Error{Code: "InvalidPolicyDocument"}) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParsePostPolicy("!!!"); err == nil {
		t.Error("bad base64 accepted")
	}
}

func TestVerifyPost(t *testing.T) {
	v := &Verifier{Lookup: func(k string) (string, bool) { return "secret", k == "AK" }, AllowV2: true}
	pol := policyB64(testPolicy)
	sig := SignPostPolicy("secret", "20261205", "us-east-1", "s3", pol)
	fields := map[string]string{"policy": pol, "x-amz-algorithm": Algorithm,
		"x-amz-credential": "AK/20261205/us-east-1/s3/aws4_request", "x-amz-date": "20261205T000000Z", "x-amz-signature": sig}
	a, err := v.VerifyPost(fields)
	if err != nil || a.AccessKey != "AK" || a.Region != "us-east-1" {
		t.Fatalf("%v %+v", err, a)
	}
	fields["x-amz-signature"] = SignPostPolicy("other", "20261205", "us-east-1", "s3", pol)
	if _, err := v.VerifyPost(fields); !errors.Is(err, ErrSignatureDoesNotMatch) {
		t.Fatalf("bad signature: %v", err)
	}
	fields["x-amz-signature"] = sig
	fields["x-amz-credential"] = "XX/20261205/us-east-1/s3/aws4_request"
	if _, err := v.VerifyPost(fields); !errors.Is(err, ErrInvalidAccessKeyID) {
		t.Fatalf("unknown key: %v", err)
	}
	// V2 only outside FIPS mode (TestV2RefusedInFIPSMode covers that mode).
	if !fips140.Enabled() {
		v2 := map[string]string{"policy": pol, "awsaccesskeyid": "AK", "signature": SignV2("secret", []byte(pol))}
		if _, err := v.VerifyPost(v2); err != nil {
			t.Fatalf("v2: %v", err)
		}
		v2["signature"] = SignV2("other", []byte(pol))
		if _, err := v.VerifyPost(v2); !errors.Is(err, ErrSignatureDoesNotMatch) {
			t.Fatalf("v2 bad: %v", err)
		}
	}
	if _, err := v.VerifyPost(map[string]string{"policy": pol}); !errors.Is(err, ErrMissingAuth) {
		t.Fatalf("anonymous: %v", err)
	}
}

func FuzzParsePostPolicy(f *testing.F) {
	f.Add(testPolicy)
	f.Add(`{"expiration":"2026-12-05T01:00:00Z","conditions":[["content-length-range",0,1e30]]}`)
	f.Add(`{"expiration":"2026-12-05T01:00:00Z","conditions":[{"key":1}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := ParsePostPolicy(policyB64(doc))
		if err != nil {
			return
		}
		if p.HasRange && (p.MinLength < 0 || p.MaxLength < p.MinLength) {
			t.Fatalf("bad range %d..%d", p.MinLength, p.MaxLength)
		}
		_ = p.Check(map[string]string{"key": "k"}, time.Now())
		_ = p.CheckLength(5)
	})
}
