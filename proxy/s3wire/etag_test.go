package s3wire

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
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

// TestPartETag: a part ETag carrying the plaintext MD5 maps back to the
// store's part ETag, and the object's ETag is S3's over the plaintext
// parts only when every part carries one.
func TestPartETag(t *testing.T) {
	a, b := md5.Sum([]byte("a")), md5.Sum([]byte("b"))
	store := `"9b2cf535f27731c974343645a3985328"`
	client := ClientPartETag(store, a[:])
	if want := `"9b2cf535f27731c974343645a3985328-m0cc175b9c0f1b6a831c399e269772661-0"`; client != want {
		t.Fatalf("ClientPartETag = %s, want %s", client, want)
	}
	for _, tt := range []struct {
		client, store string
		sum           []byte
	}{
		{client, store, a[:]},
		{strings.Trim(client, `"`), strings.Trim(store, `"`), a[:]},
		{`"9b2cf535f27731c974343645a3985328-0"`, store, nil},
		{`"9b2cf535f27731c974343645a3985328"`, store, nil},
		{`"abc-3"`, `"abc-3"`, nil},
		// Not hex after the mark: an ETag like any other.
		{`"x-m0cc175b9c0f1b6a831c399e26977266z-0"`, `"x-m0cc175b9c0f1b6a831c399e26977266z"`, nil},
		// The mark with nothing before it is not a part ETag of ours.
		{`"-m0cc175b9c0f1b6a831c399e269772661-0"`, `"-m0cc175b9c0f1b6a831c399e269772661"`, nil},
	} {
		gotStore, gotSum := SplitPartETag(tt.client)
		if gotStore != tt.store || string(gotSum) != string(tt.sum) {
			t.Errorf("SplitPartETag(%s) = %s, %x; want %s, %x", tt.client, gotStore, gotSum, tt.store, tt.sum)
		}
		if got := StoreETag(tt.client); got != tt.store {
			t.Errorf("StoreETag(%s) = %s, want %s", tt.client, got, tt.store)
		}
	}
	if got := ClientPartETag(store, nil); got != ClientETag(store) {
		t.Errorf("ClientPartETag without an MD5 = %s", got)
	}

	parts := []CompletePart{{PartNumber: 1, ETag: client}, {PartNumber: 2, ETag: " " + ClientPartETag(`"92eb5ffee6ae2fec3ad71c777531578f"`, b[:]) + " "}}
	got, ok := PlainMultipartETag(parts)
	if want := fmt.Sprintf(`"%x-2"`, md5.Sum(append(a[:], b[:]...))); !ok || got != want {
		t.Errorf("PlainMultipartETag = %s, %v; want %s", got, ok, want)
	}
	// The store's multipart ETag is still found for a retried Complete.
	if got, ok := MultipartETag(parts); !ok || got != fmt.Sprintf(`"%x-2"`, md5.Sum(append(unhex("9b2cf535f27731c974343645a3985328"), unhex("92eb5ffee6ae2fec3ad71c777531578f")...))) {
		t.Errorf("MultipartETag = %s, %v", got, ok)
	}
	parts[1].ETag = `"77-0"`
	if _, ok := PlainMultipartETag(parts); ok {
		t.Error("PlainMultipartETag with a part of unknown MD5")
	}
}

func TestObjectETag(t *testing.T) {
	for _, tt := range []struct{ store, sealed, want string }{
		{`"aa-2"`, "", `"aa-2"`},
		{`"aa-2"`, "bb-2", `"bb-2"`},
		{`"aa-2"`, `"bb-2"`, `"bb-2"`},
		{`"aa-2"`, "bb-3", `"aa-2"`}, // another part count: not this object's
		{`"aa"`, "bb-1", `"aa-0"`},
		{`"aa"`, "", `"aa-0"`},
	} {
		if got := ObjectETag(tt.store, tt.sealed); got != tt.want {
			t.Errorf("ObjectETag(%s, %s) = %s, want %s", tt.store, tt.sealed, got, tt.want)
		}
	}
}

// TestCheckReadConditions: S3's evaluation of GET/HEAD conditions, with
// either ETag of a version naming it.
func TestCheckReadConditions(t *testing.T) {
	const store, sealed = `"aa-2"`, "bb-2"
	lm := "Wed, 02 Dec 2026 10:00:00 GMT"
	before, after := "Tue, 01 Dec 2026 10:00:00 GMT", "Thu, 03 Dec 2026 10:00:00 GMT"
	for _, tt := range []struct {
		name string
		h    map[string]string
		want int
	}{
		{"none", nil, 0},
		{"if-match sealed", map[string]string{"If-Match": `"bb-2"`}, 0},
		{"if-match store", map[string]string{"If-Match": `"aa-2"`}, 0},
		{"if-match star", map[string]string{"If-Match": `*`}, 0},
		{"if-match other", map[string]string{"If-Match": `"cc-2"`}, 412},
		{"if-match weak list", map[string]string{"If-Match": `"cc-2", W/"bb-2"`}, 0},
		{"if-none-match sealed", map[string]string{"If-None-Match": `"bb-2"`}, 304},
		{"if-none-match store", map[string]string{"If-None-Match": `"aa-2"`}, 304},
		{"if-none-match other", map[string]string{"If-None-Match": `"cc-2"`}, 0},
		{"unmodified-since before", map[string]string{"If-Unmodified-Since": before}, 412},
		{"unmodified-since after", map[string]string{"If-Unmodified-Since": after}, 0},
		{"modified-since after", map[string]string{"If-Modified-Since": after}, 304},
		{"modified-since before", map[string]string{"If-Modified-Since": before}, 0},
		{"if-match true wins over unmodified-since", map[string]string{"If-Match": `"bb-2"`, "If-Unmodified-Since": before}, 0},
		{"if-none-match false wins over modified-since", map[string]string{"If-None-Match": `"cc-2"`, "If-Modified-Since": after}, 0},
		{"if-match false, if-none-match true", map[string]string{"If-Match": `"cc-2"`, "If-None-Match": `"bb-2"`}, 412},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.h {
				h.Set(k, v)
			}
			if got := CheckReadConditions(h, store, sealed, lm); got != tt.want {
				t.Errorf("CheckReadConditions = %d, want %d", got, tt.want)
			}
		})
	}
	for v, want := range map[string]bool{`"aa-2"`: true, `W/"aa-2"`: true, `"x", "aa-2"`: true, `"aa-0"`: false, `*`: false, ``: false, `"aa"`: false} {
		if got := NamesMultipartETag(v); got != want {
			t.Errorf("NamesMultipartETag(%q) = %v", v, got)
		}
	}
}
