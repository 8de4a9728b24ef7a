package s3wire

import (
	"net/http"
	"testing"
)

func TestParseCopySource(t *testing.T) {
	for _, tt := range []struct {
		in                        string
		bucket, key, raw, version string
		query                     string
	}{
		{"b/k", "b", "k", "/b/k", "", ""},
		{"/b/a//b%2Fc", "b", "a//b/c", "/b/a//b/c", "", ""},
		{"b/k?versionId=v%2B1", "b", "k", "/b/k", "v+1", "versionId=v%2B1"},
		{"b/amp&.txt", "b", "amp&.txt", "/b/amp%26.txt", "", ""},
		{"b/a+b%2Bc", "b", "a b+c", "/b/a%20b%2Bc", "", ""},
		{"b/100%25 %3F=x", "b", "100% ?=x", "/b/100%25%20%3F%3Dx", "", ""},
		{"b/caf\u00e9 d", "b", "caf\u00e9 d", "/b/caf%C3%A9%20d", "", ""},
		{"b/caf%C3%A9", "b", "caf\u00e9", "/b/caf%C3%A9", "", ""},
	} {
		cs, err := ParseCopySource(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if cs.Bucket != tt.bucket || cs.Key != tt.key || cs.RawPath != tt.raw || cs.VersionID != tt.version || cs.Query() != tt.query {
			t.Errorf("%s: %+v, query %q", tt.in, cs, cs.Query())
		}
	}
	for _, bad := range []string{"", "b", "/b/", "b/%zz", "b/k?versionId=%zz"} {
		if _, err := ParseCopySource(bad); err == nil || AsError(err).Code != "InvalidArgument" {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseCopySource(f *testing.F) {
	for _, s := range []string{"b/k", "/b/k?versionId=1", "b//k", "%2F/k", "b/k?versionId=%", "?", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		cs, err := ParseCopySource(v)
		if err != nil {
			if AsError(err).Status != http.StatusBadRequest {
				t.Fatalf("%q: %v", v, err)
			}
			return
		}
		if cs.Bucket == "" || cs.Key == "" || cs.RawPath == "" || cs.RawPath[0] != '/' {
			t.Fatalf("%q parsed as %+v", v, cs)
		}
	})
}

func TestCheckCopyConditions(t *testing.T) {
	const tag = `"aa"` // the store's; clients know it as "aa-0"
	const lm = "Mon, 02 Jan 2026 15:04:05 GMT"
	for _, tt := range []struct {
		name, header, value string
		fail                bool
	}{
		{"if-match, client ETag", "X-Amz-Copy-Source-If-Match", `"aa-0"`, false},
		{"if-match, other", "X-Amz-Copy-Source-If-Match", `"bb-0"`, true},
		{"if-none-match, same", "X-Amz-Copy-Source-If-None-Match", `"aa-0"`, true},
		{"if-none-match, other", "X-Amz-Copy-Source-If-None-Match", `"bb-0"`, false},
		{"if-unmodified-since, before", "X-Amz-Copy-Source-If-Unmodified-Since", "Mon, 02 Jan 2026 15:00:00 GMT", true},
		{"if-unmodified-since, after", "X-Amz-Copy-Source-If-Unmodified-Since", "Mon, 02 Jan 2026 16:00:00 GMT", false},
		{"if-modified-since, after", "X-Amz-Copy-Source-If-Modified-Since", "Mon, 02 Jan 2026 16:00:00 GMT", true},
		{"if-modified-since, before", "X-Amz-Copy-Source-If-Modified-Since", "Mon, 02 Jan 2026 15:00:00 GMT", false},
	} {
		h := http.Header{}
		h.Set(tt.header, tt.value)
		err := CheckCopyConditions(h, tag, "", lm)
		if (err != nil) != tt.fail {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	// S3: if-match that holds overrides if-unmodified-since.
	h := http.Header{}
	h.Set("X-Amz-Copy-Source-If-Match", `"aa-0"`)
	h.Set("X-Amz-Copy-Source-If-Unmodified-Since", "Mon, 02 Jan 2026 15:00:00 GMT")
	if err := CheckCopyConditions(h, tag, "", lm); err != nil {
		t.Errorf("if-match and if-unmodified-since: %v", err)
	}
}

func TestCopySourceError(t *testing.T) {
	if e := CopySourceError(http.StatusNotFound); e.Code != "NoSuchKey" || e.Message != "The specified key does not exist." {
		t.Errorf("404: %+v", e)
	}
	if e := CopySourceError(http.StatusForbidden); e.Code != "AccessDenied" || e.Status != 403 {
		t.Errorf("403: %+v", e)
	}
}
