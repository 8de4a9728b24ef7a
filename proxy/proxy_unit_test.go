package proxy

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/envelope"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		method, uri string
		copySrc     bool
		want        op
	}{
		{"GET", "/", false, opListBuckets},
		{"PUT", "/", false, opUnsupported},
		{"GET", "/b", false, opListObjects},
		{"GET", "/b/?list-type=2&prefix=a", false, opListObjects},
		{"GET", "/b?location", false, opBucketRead},
		{"GET", "/b?versions", false, opListVersions},
		{"GET", "/b?uploads", false, opListMultipartUploads},
		{"HEAD", "/b", false, opBucketRead},
		{"PUT", "/b", false, opBucketWrite},
		{"PUT", "/b?versioning", false, opBucketWrite},
		{"PUT", "/b?select", false, opUnsupported},
		{"DELETE", "/b", false, opBucketWrite},
		{"POST", "/b?delete", false, opDeleteObjects},
		{"POST", "/b", false, opUnsupported}, // browser form upload
		{"PUT", "/b/k", false, opPutObject},
		{"PUT", "/b/k?x-id=PutObject", false, opPutObject},
		{"PUT", "/b/k", true, opCopyObject},
		{"PUT", "/b/k?tagging", false, opObjectWrite},
		{"PUT", "/b/k?partNumber=1&uploadId=x", false, opUploadPart},
		{"PUT", "/b/k?partNumber=1&uploadId=x", true, opUploadPartCopy},
		{"PUT", "/b/k?unknown=1", false, opUnsupported},
		{"GET", "/b/k", false, opGetObject},
		{"GET", "/b/k?versionId=3", false, opGetObject},
		{"GET", "/b/k?tagging", false, opObjectRead},
		{"GET", "/b/k?uploadId=x", false, opListParts},
		{"GET", "/b/k?attributes", false, opGetAttributes},
		{"POST", "/b/k?select&select-type=2", false, opUnsupported},
		{"HEAD", "/b/k", false, opHeadObject},
		{"DELETE", "/b/k", false, opDeleteObject},
		{"DELETE", "/b/k?uploadId=x", false, opAbortMultipart},
		{"POST", "/b/k?uploads", false, opCreateMultipart},
		{"POST", "/b/k?uploadId=x", false, opCompleteMultipart},
		{"POST", "/b/k", false, opUnsupported},
		{"PATCH", "/b/k", false, opUnsupported},
		{"GET", "/b/a//b/../c%2Fd", false, opGetObject},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.uri, func(t *testing.T) {
			tg, err := parseTarget(tt.uri)
			if err != nil {
				t.Fatal(err)
			}
			if got := classify(tt.method, tg, tt.copySrc); got != tt.want {
				t.Errorf("classify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseTargetKeepsRawPath(t *testing.T) {
	tg, err := parseTarget("/bucket/a//b/./c%2Fd%20e+f?versionId=1")
	if err != nil {
		t.Fatal(err)
	}
	if tg.Bucket != "bucket" || tg.Key != "a//b/./c/d e+f" || tg.RawPath != "/bucket/a//b/./c%2Fd%20e+f" {
		t.Errorf("got bucket %q key %q raw %q", tg.Bucket, tg.Key, tg.RawPath)
	}
}

func TestETagMapping(t *testing.T) {
	tests := []struct{ store, client string }{
		{`"d41d8cd98f00b204e9800998ecf8427e"`, `"d41d8cd98f00b204e9800998ecf8427e-0"`},
		{`d41d8cd98f00b204e9800998ecf8427e`, `d41d8cd98f00b204e9800998ecf8427e-0`},
		{`"a1b2-3"`, `"a1b2-3"`},
		{``, ``},
	}
	for _, tt := range tests {
		if got := clientETag(tt.store); got != tt.client {
			t.Errorf("clientETag(%s) = %s, want %s", tt.store, got, tt.client)
		}
		if got := storeETag(tt.client); got != tt.store {
			t.Errorf("storeETag(%s) = %s, want %s", tt.client, got, tt.store)
		}
	}
	if got := storeETagList(`"aa-0", W/"bb-0" ,"cc-2"`); got != `"aa", W/"bb", "cc-2"` {
		t.Errorf("storeETagList = %s", got)
	}
	if got := storeETagList("*"); got != "*" {
		t.Errorf("storeETagList(*) = %s", got)
	}
}

func TestParseRange(t *testing.T) {
	const size = 100
	tests := []struct {
		h           string
		parsed      bool
		off, n      int64
		satisfiable bool
	}{
		{"bytes=0-9", true, 0, 10, true},
		{"bytes=90-", true, 90, 10, true},
		{"bytes=90-1000", true, 90, 10, true},
		{"bytes=-10", true, 90, 10, true},
		{"bytes=-1000", true, 0, 100, true},
		{"bytes=-0", true, 0, 0, false},
		{"bytes=100-", true, 0, 0, false},
		{"bytes=99-99", true, 99, 1, true},
		{"bytes=5-4", false, 0, 0, false},
		{"bytes=0-1,3-4", false, 0, 0, false},
		{"items=0-1", false, 0, 0, false},
		{"bytes=a-b", false, 0, 0, false},
	}
	for _, tt := range tests {
		br, ok := parseRange(tt.h)
		if ok != tt.parsed {
			t.Errorf("%s: parsed %v, want %v", tt.h, ok, tt.parsed)
			continue
		}
		if !ok {
			continue
		}
		off, n, sat := br.resolve(size)
		if sat != tt.satisfiable || sat && (off != tt.off || n != tt.n) {
			t.Errorf("%s: resolve = %d,%d,%v want %d,%d,%v", tt.h, off, n, sat, tt.off, tt.n, tt.satisfiable)
		}
	}
	if br, _ := parseRange("bytes=0-"); func() bool { _, _, ok := br.resolve(0); return ok }() {
		t.Error("a range on an empty object must be unsatisfiable")
	}
}

func TestRewriteListing(t *testing.T) {
	single := envelope.CiphertextSize(1000)
	multi := 3*envelope.PartOverhead + 5<<20
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>` +
		`<Contents><Key>one</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&#34;0123456789abcdef0123456789abcdef&#34;</ETag><Size>` + itoa(single) + `</Size><StorageClass>STANDARD</StorageClass></Contents>` +
		`<Contents><Key>two</Key><Size>` + itoa(multi) + `</Size><ETag>&quot;abcd-3&quot;</ETag></Contents>` +
		`<Contents><Key>plain</Key><ETag>"x"</ETag><Size>1</Size></Contents>` +
		`<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListBucketResult>`
	got := string(rewriteListing([]byte(doc)))
	for _, want := range []string{
		`<ETag>&#34;0123456789abcdef0123456789abcdef-0&#34;</ETag><Size>1000</Size>`,
		`<Size>5242880</Size><ETag>&#34;abcd-3&#34;</ETag>`,
		`<Key>plain</Key><ETag>"x"</ETag><Size>1</Size>`, // not sealed: untouched
		`<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten listing lacks %s\n%s", want, got)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestForwardQueryDropsAuthParams(t *testing.T) {
	in := "X-Amz-Algorithm=AWS4-HMAC-SHA256&versionId=a%2Bb&X-Amz-Signature=00&response-content-type=text%2Fplain"
	if got := forwardQuery(in); got != "versionId=a%2Bb&response-content-type=text%2Fplain" {
		t.Errorf("forwardQuery = %s", got)
	}
}

func FuzzRewriteListing(f *testing.F) {
	f.Add([]byte(`<ListBucketResult><Contents><ETag>"aa"</ETag><Size>1016</Size></Contents></ListBucketResult>`))
	f.Add([]byte(`<Contents><Size>x</Size><ETag>`))
	f.Add([]byte(`<Version><ETag>&quot;a-2&quot;</ETag><Size>99999</Size></Version><Contents>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		out := rewriteListing(doc)
		if !strings.Contains(string(doc), "<Contents>") && !strings.Contains(string(doc), "<Version>") && string(out) != string(doc) {
			t.Fatal("a document without entries must come back unchanged")
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=9-", "bytes=1-0", "bytes=--1", "bytes=0-9223372036854775807"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		br, ok := parseRange(h)
		if !ok {
			return
		}
		off, n, sat := br.resolve(size)
		if sat && (off < 0 || n <= 0 || off+n > size) {
			t.Fatalf("%q on %d: off %d n %d", h, size, off, n)
		}
	})
}

// BenchmarkRewriteListing rewrites a 1,000-key ListObjectsV2 page.
func BenchmarkRewriteListing(b *testing.B) {
	var doc strings.Builder
	doc.WriteString(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>`)
	for i := range 1000 {
		doc.WriteString(`<Contents><Key>dir/object-` + strconv.Itoa(i) + `</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>` +
			`<ETag>&#34;0123456789abcdef0123456789abcdef&#34;</ETag><Size>` + strconv.FormatInt(envelope.CiphertextSize(int64(i*1000)), 10) +
			`</Size><StorageClass>STANDARD</StorageClass></Contents>`)
	}
	doc.WriteString(`</ListBucketResult>`)
	in := []byte(doc.String())
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		rewriteListing(in)
	}
}

// TestStoredLimits: the largest single PUT and part s3seal accepts fit S3's
// 5 GiB limit once encrypted, and one byte more would not.
func TestStoredLimits(t *testing.T) {
	if c := envelope.CiphertextSize(maxPlainSingle); c > maxStored || envelope.CiphertextSize(maxPlainSingle+1) <= maxStored {
		t.Errorf("maxPlainSingle %d: stored %d, next %d", maxPlainSingle, c, envelope.CiphertextSize(maxPlainSingle+1))
	}
	if envelope.PartCiphertextSize(maxPlainPart) != maxStored {
		t.Errorf("maxPlainPart %d stores as %d", maxPlainPart, envelope.PartCiphertextSize(maxPlainPart))
	}
}

// TestMultipartETag: S3's multipart ETag from the part ETags clients hold
// (with s3seal's "-0"), as MinIO and AWS compute it.
func TestMultipartETag(t *testing.T) {
	// Two parts whose MD5s are those of "a" and "b".
	parts := []completePart{{PartNumber: 1, ETag: `"0cc175b9c0f1b6a831c399e269772661-0"`}, {PartNumber: 2, ETag: `"92eb5ffee6ae2fec3ad71c777531578f"`}}
	got, ok := multipartETag(parts)
	if want := `"` + fmt.Sprintf("%x", md5.Sum(append(unhex("0cc175b9c0f1b6a831c399e269772661"), unhex("92eb5ffee6ae2fec3ad71c777531578f")...))) + `-2"`; !ok || got != want {
		t.Errorf("multipartETag = %s, %v; want %s", got, ok, want)
	}
	if _, ok := multipartETag([]completePart{{PartNumber: 1, ETag: `"not-an-md5"`}}); ok {
		t.Error("a non-MD5 part ETag gave a multipart ETag")
	}
}

func unhex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

func TestUploadIDCodec(t *testing.T) {
	u := []byte("0123456789abcdef")
	for _, tc := range []struct{ store, key string }{
		{"abc", ""}, {"a~b~c", "alias/x"}, {"2~/+=", "arn:aws:kms:eu-west-1:111122223333:key/k"},
	} {
		id := clientUploadID(tc.store, u, tc.key)
		ref := parseUploadID(id)
		if ref.storeID != tc.store || string(ref.upload) != string(u) || ref.keyID != tc.key || ref.client != id {
			t.Errorf("%q: parsed %+v", id, ref)
		}
	}
	for _, foreign := range []string{"plain-store-id", "s3seal1~YQ~store", "s3seal2~short~~store", "s3seal2~" + "MDEyMzQ1Njc4OWFiY2RlZg" + "~store"} {
		if ref := parseUploadID(foreign); ref.upload != nil || ref.storeID != foreign {
			t.Errorf("foreign id %q parsed as %+v", foreign, ref)
		}
	}
}
