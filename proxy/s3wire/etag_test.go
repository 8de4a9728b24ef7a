package s3wire

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func TestETagMapping(t *testing.T) {
	tests := []struct{ store, client string }{
		{`"d41d8cd98f00b204e9800998ecf8427e"`, `"d41d8cd98f00b204e9800998ecf8427e-0"`},
		{`d41d8cd98f00b204e9800998ecf8427e`, `d41d8cd98f00b204e9800998ecf8427e-0`},
		{`"a1b2-3"`, `"a1b2-3"`},
		{``, ``},
	}
	for _, tt := range tests {
		if got := ClientETag(tt.store); got != tt.client {
			t.Errorf("ClientETag(%s) = %s, want %s", tt.store, got, tt.client)
		}
		if got := StoreETag(tt.client); got != tt.store {
			t.Errorf("StoreETag(%s) = %s, want %s", tt.client, got, tt.store)
		}
	}
	if got := storeETagList(`"aa-0", W/"bb-0" ,"cc-2"`); got != `"aa", W/"bb", "cc-2"` {
		t.Errorf("storeETagList = %s", got)
	}
	if got := storeETagList("*"); got != "*" {
		t.Errorf("storeETagList(*) = %s", got)
	}
}

// TestMultipartETag: S3's multipart ETag from the part ETags clients hold
// (with s3seal's "-0"), as MinIO and AWS compute it.
func TestMultipartETag(t *testing.T) {
	// Two parts whose MD5s are those of "a" and "b".
	parts := []CompletePart{{PartNumber: 1, ETag: `"0cc175b9c0f1b6a831c399e269772661-0"`}, {PartNumber: 2, ETag: `"92eb5ffee6ae2fec3ad71c777531578f"`}}
	got, ok := MultipartETag(parts)
	if want := `"` + fmt.Sprintf("%x", md5.Sum(append(unhex("0cc175b9c0f1b6a831c399e269772661"), unhex("92eb5ffee6ae2fec3ad71c777531578f")...))) + `-2"`; !ok || got != want {
		t.Errorf("multipartETag = %s, %v; want %s", got, ok, want)
	}
	if _, ok := MultipartETag([]CompletePart{{PartNumber: 1, ETag: `"not-an-md5"`}}); ok {
		t.Error("a non-MD5 part ETag gave a multipart ETag")
	}
}

func unhex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

func TestETagMatches(t *testing.T) {
	for _, tt := range []struct {
		cond, tag string
		want      bool
	}{
		{`"a-0"`, `"a-0"`, true},
		{`a-0`, `"a-0"`, true},
		{`W/"a-0"`, `"a-0"`, true},
		{`"b-0", "a-0"`, `"a-0"`, true},
		{`*`, `"a-0"`, true},
		{`"a"`, `"a-0"`, false},
		{`"b-0"`, `"a-0"`, false},
	} {
		if got := etagMatches(tt.cond, tt.tag); got != tt.want {
			t.Errorf("etagMatches(%s, %s) = %v", tt.cond, tt.tag, got)
		}
	}
}

// FuzzETagMapping: the client ETag of any store ETag maps back to it, and
// is never a bare MD5 that clients would compare with the plaintext's.
func FuzzETagMapping(f *testing.F) {
	for _, s := range []string{`"d41d8cd98f00b204e9800998ecf8427e"`, `"a1b2-3"`, `x-0`, `"`, `""`, `*`, `"a-00"`, `W/"a"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, store string) {
		client := ClientETag(store)
		if back := StoreETag(client); back != store {
			t.Fatalf("store %q -> client %q -> store %q", store, client, back)
		}
		if store != "" && store != "*" && !strings.Contains(client, "-") {
			t.Fatalf("client ETag %q of %q looks like an MD5", client, store)
		}
	})
}
