package s3wire

import (
	"net/http"
	"reflect"
	"testing"
)

func TestFormHeaders(t *testing.T) {
	got := FormHeaders(map[string]string{
		"key": "k", "policy": "p", "x-amz-signature": "s", "success_action_status": "201", "x-ignore-me": "1",
		"content-type": "image/png", "x-amz-meta-who": "alice", "acl": "private", "cache-control": "no-cache",
		"x-amz-server-side-encryption": "aws:kms", "bucket": "b",
	})
	want := http.Header{"Content-Type": {"image/png"}, "X-Amz-Meta-Who": {"alice"}, "X-Amz-Acl": {"private"},
		"Cache-Control": {"no-cache"}, "X-Amz-Server-Side-Encryption": {"aws:kms"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestEscapePath(t *testing.T) {
	for key, want := range map[string]string{
		"a/b.txt":       "/b/a/b.txt",
		"amp&+ ?%#.txt": "/b/amp%26%2B%20%3F%25%23.txt",
		"café":          "/b/caf%C3%A9",
		"a//b~_-":       "/b/a//b~_-",
	} {
		if got := EscapePath("b", key); got != want {
			t.Errorf("%q: %s, want %s", key, got, want)
		}
	}
}
