package s3wire

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestForwardable(t *testing.T) {
	for k, want := range map[string]bool{
		"Content-Type": true, "Cache-Control": true, "If-Modified-Since": true, "X-Amz-Acl": true,
		"X-Amz-Tagging": true, "X-Amz-Storage-Class": true, "X-Amz-Expected-Bucket-Owner": true,
		// authentication and transport
		"Authorization": false, "Host": false, "Content-Length": false, "X-Amz-Date": false,
		"X-Amz-Content-Sha256": false, "X-Amz-Decoded-Content-Length": false, "Expect": false,
		"Transfer-Encoding": false, "Range": false,
		// they describe the plaintext, or are sealed
		"Content-Md5": false, "X-Amz-Checksum-Crc32": false, "X-Amz-Sdk-Checksum-Algorithm": false,
		"X-Amz-Meta-Color": false, "X-Amz-Server-Side-Encryption": false,
		"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": false,
		// the proxy sends its own
		"X-Amz-Copy-Source": false, "X-Amz-Copy-Source-If-Match": false,
		"Content-Encoding": false, // CopyRequestHeaders strips aws-chunked first
		"X-Custom":         false,
	} {
		if got := forwardable(k); got != want {
			t.Errorf("forwardable(%s) = %v", k, got)
		}
	}
}

func TestCopyRequestHeaders(t *testing.T) {
	in := http.Header{
		"If-Match":                     {`"aa-0"`, `"bb-3"`},
		"Content-Encoding":             {"aws-chunked,gzip"},
		"Content-Type":                 {"text/plain"},
		"X-Amz-Meta-A":                 {"b"},
		"X-Amz-Checksum-Sha256":        {"x"},
		"Authorization":                {"AWS4-HMAC-SHA256 ..."},
		"X-Amz-Acl":                    {"private"},
		"X-Amz-Server-Side-Encryption": {"aws:kms"},
	}
	out := http.Header{}
	CopyRequestHeaders(out, in)
	want := http.Header{
		"If-Match":         {`"aa", "bb-3"`},
		"Content-Encoding": {"gzip"},
		"Content-Type":     {"text/plain"},
		"X-Amz-Acl":        {"private"},
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("got %v\nwant %v", out, want)
	}
	out = http.Header{}
	CopyRequestHeaders(out, http.Header{"Content-Encoding": {"aws-chunked"}})
	if len(out) != 0 {
		t.Errorf("aws-chunked alone: %v", out)
	}
}

func TestDropResponseHeader(t *testing.T) {
	for _, tt := range []struct {
		key           string
		plain, sealed bool // dropped for a relayed answer, for a sealed object's
	}{
		{"Content-Length", true, true},
		{"X-Amz-Request-Id", true, true},
		{"Accept-Ranges", true, true},
		{"Last-Modified", false, false},
		{"X-Amz-Version-Id", false, false},
		{"Etag", false, true},
		{"X-Amz-Meta-S3seal", false, true},
		{"X-Amz-Checksum-Crc32", false, true},
		{"X-Amz-Server-Side-Encryption", false, true},
		{"Content-Range", false, true},
		{"Content-Md5", false, true},
	} {
		if got := DropResponseHeader(tt.key, false); got != tt.plain {
			t.Errorf("DropResponseHeader(%s, unsealed) = %v", tt.key, got)
		}
		if got := DropResponseHeader(tt.key, true); got != tt.sealed {
			t.Errorf("DropResponseHeader(%s, sealed) = %v", tt.key, got)
		}
	}
}

func TestConditions(t *testing.T) {
	h := http.Header{"If-None-Match": {`W/"aa-0"`}, "If-Modified-Since": {"Mon, 02 Jan 2026 15:04:05 GMT"}, "Range": {"bytes=0-1"}}
	want := http.Header{"If-None-Match": {`W/"aa"`}, "If-Modified-Since": {"Mon, 02 Jan 2026 15:04:05 GMT"}}
	if got := Conditions(h); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
}

func TestHasSSEC(t *testing.T) {
	if HasSSEC(http.Header{HeaderSSE: {"aws:kms"}}) {
		t.Error("SSE-KMS taken for SSE-C")
	}
	for _, k := range []string{"X-Amz-Server-Side-Encryption-Customer-Algorithm", "X-Amz-Server-Side-Encryption-Customer-Key",
		"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm"} {
		if !HasSSEC(http.Header{k: {"AES256"}}) {
			t.Errorf("%s not seen", k)
		}
	}
}

func TestUserMetadata(t *testing.T) {
	m, err := UserMetadata(http.Header{"X-Amz-Meta-Color": {"red", "blue"}, "Content-Type": {"x"}})
	if err != nil || !reflect.DeepEqual(m, map[string]string{"color": "red,blue"}) {
		t.Errorf("got %v, %v", m, err)
	}
	if _, err := UserMetadata(http.Header{"X-Amz-Meta-S3seal-X": {"1"}}); err == nil || AsError(err).Code != "InvalidArgument" {
		t.Errorf("reserved name: %v", err)
	}
	if _, err := UserMetadata(http.Header{"X-Amz-Meta-Big": {strings.Repeat("x", userMetaLimit)}}); err != ErrMetadataTooLarge {
		t.Errorf("over the limit: %v", err)
	}
	var got []string
	SetUserMetadata(func(k, v string) { got = append(got, k+"="+v) }, map[string]string{"b": "2", "a": "1"})
	if !reflect.DeepEqual(got, []string{"x-amz-meta-a=1", "x-amz-meta-b=2"}) {
		t.Errorf("SetUserMetadata: %v", got)
	}
}

func TestSealedContentHeaders(t *testing.T) {
	h := http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"aws-chunked", "gzip"}, "X-Amz-Acl": {"private"}}
	want := map[string]string{"Content-Type": "text/html", "Content-Encoding": "gzip"}
	if got := SealedContentHeaders(h); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	if got := SealedContentHeaders(http.Header{"Content-Encoding": {"aws-chunked"}}); got != nil {
		t.Errorf("aws-chunked alone: %v", got)
	}
	DropContentHeaders(h)
	if !reflect.DeepEqual(h, http.Header{"X-Amz-Acl": {"private"}}) {
		t.Errorf("DropContentHeaders left %v", h)
	}
	if got := CreateHeaders(http.Header{"X-Amz-Storage-Class": {"STANDARD_IA"}, "X-Amz-Tagging": {"a=b"}}); !reflect.DeepEqual(got, map[string]string{"X-Amz-Storage-Class": "STANDARD_IA"}) {
		t.Errorf("CreateHeaders: %v", got)
	}
}
