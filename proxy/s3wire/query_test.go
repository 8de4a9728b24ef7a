package s3wire

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

func TestForwardQueryDropsAuthParams(t *testing.T) {
	in := "X-Amz-Algorithm=AWS4-HMAC-SHA256&versionId=a%2Bb&X-Amz-Signature=00&response-content-type=text%2Fplain"
	if got := ForwardQuery(in); got != "versionId=a%2Bb&response-content-type=text%2Fplain" {
		t.Errorf("forwardQuery = %s", got)
	}
}

func TestWithHeaderParams(t *testing.T) {
	h := http.Header{"Content-Type": {"text/plain"}}
	q := url.Values{"content-type": {"image/png"}, "x-amz-meta-a": {"b"}, "X-Amz-Signature": {"00"}, "versionId": {"1"}}
	got := WithHeaderParams(h, q)
	want := http.Header{"Content-Type": {"text/plain"}, "X-Amz-Meta-A": {"b"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	if !reflect.DeepEqual(h, http.Header{"Content-Type": {"text/plain"}}) {
		t.Errorf("the verified header changed: %v", h)
	}
	if got := WithHeaderParams(h, url.Values{"versionId": {"1"}}); !reflect.DeepEqual(got, h) {
		t.Errorf("no stand-ins: %v", got)
	}
}

func TestSetAndDropParam(t *testing.T) {
	const q = "partNumber=1&uploadId=s3seal2~a&x=%2F"
	if got := SetParam(q, "uploadId", "a/b c"); got != "partNumber=1&uploadId=a%2Fb+c&x=%2F" {
		t.Errorf("SetParam = %s", got)
	}
	if got := DropParam(q, "partNumber"); got != "uploadId=s3seal2~a&x=%2F" {
		t.Errorf("DropParam = %s", got)
	}
	if got := SetParam(q, "versionId", "1"); got != q {
		t.Errorf("SetParam of a missing parameter = %s", got)
	}
}
