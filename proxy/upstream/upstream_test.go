package upstream

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestNewChecksURL(t *testing.T) {
	for _, bad := range []string{"", "minio:9000", "ftp://h", "http://", "http://h/prefix", "://x"} {
		if _, err := New(Config{URL: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"http://127.0.0.1:9000", "https://s3.example.com/", "http://h"} {
		if _, err := New(Config{URL: good}); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

func TestReadBodyBounded(t *testing.T) {
	resp := &fasthttp.Response{}
	resp.SetBodyString("0123456789")
	if b, err := ReadBody(resp, 10); err != nil || string(b) != "0123456789" {
		t.Errorf("got %q, %v", b, err)
	}
	resp.SetBodyStream(strings.NewReader("0123456789x"), -1)
	if _, err := ReadBody(resp, 10); err == nil {
		t.Error("a body over the limit was read")
	}
}
