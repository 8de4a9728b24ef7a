package s3wire

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/envelope"
)

func TestRewriteListing(t *testing.T) {
	single := envelope.CiphertextSize(1000)
	multi := 3*envelope.PartOverhead + 5<<20
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>` +
		`<Contents><Key>one</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&#34;0123456789abcdef0123456789abcdef&#34;</ETag><Size>` + itoa(single) + `</Size><StorageClass>STANDARD</StorageClass></Contents>` +
		`<Contents><Key>two</Key><Size>` + itoa(multi) + `</Size><ETag>&quot;abcd-3&quot;</ETag></Contents>` +
		`<Contents><Key>plain</Key><ETag>"x"</ETag><Size>1</Size></Contents>` +
		`<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListBucketResult>`
	got := string(RewriteListing([]byte(doc)))
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

func FuzzRewriteListing(f *testing.F) {
	f.Add([]byte(`<ListBucketResult><Contents><ETag>"aa"</ETag><Size>1016</Size></Contents></ListBucketResult>`))
	f.Add([]byte(`<Contents><Size>x</Size><ETag>`))
	f.Add([]byte(`<Version><ETag>&quot;a-2&quot;</ETag><Size>99999</Size></Version><Contents>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		out := RewriteListing(doc)
		if !strings.Contains(string(doc), "<Contents>") && !strings.Contains(string(doc), "<Version>") && string(out) != string(doc) {
			t.Fatal("a document without entries must come back unchanged")
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
		RewriteListing(in)
	}
}

func TestRewriteParts(t *testing.T) {
	store := "2~/+="
	ref := ParseUploadID(ClientUploadID(store, []byte("0123456789abcdef"), ""))
	doc := `<ListPartsResult><Bucket>b</Bucket><UploadId>` + store + `</UploadId>` +
		`<Part><PartNumber>1</PartNumber><ETag>&quot;aa&quot;</ETag><Size>` + itoa(5<<20+envelope.PartOverhead) + `</Size></Part>` +
		`<Part><PartNumber>2</PartNumber><ETag>"bb"</ETag><Size>10</Size></Part></ListPartsResult>`
	got := string(RewriteParts([]byte(doc), ref))
	for _, want := range []string{
		`<UploadId>` + ref.Client + `</UploadId>`,
		`<ETag>&#34;aa-0&#34;</ETag><Size>5242880</Size>`,
		`<ETag>&#34;bb-0&#34;</ETag><Size>10</Size>`, // smaller than a part's overhead: not an s3seal part
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten parts lack %s\n%s", want, got)
		}
	}
	foreign := ParseUploadID("store-id")
	if got := string(RewriteParts([]byte(`<UploadId>store-id</UploadId>`), foreign)); got != `<UploadId>store-id</UploadId>` {
		t.Errorf("a foreign upload id was rewritten: %s", got)
	}
}

// RewritePartsWith: a part the lookup knows (by part number, the store's
// ETag unquoted from the XML and the stored size) gets that size; the
// others the stored size minus the part overhead.
func TestRewritePartsWith(t *testing.T) {
	ref := ParseUploadID(ClientUploadIDCompressed("sid", []byte("0123456789abcdef"), "", envelope.AlgS2))
	doc := `<ListPartsResult><UploadId>sid</UploadId>` +
		`<Part><PartNumber>1</PartNumber><ETag>&quot;aa&quot;</ETag><Size>` + itoa(envelope.MinStoredPartSize) + `</Size></Part>` +
		`<Part><PartNumber>2</PartNumber><ETag>"bb"</ETag><Size>` + itoa(7<<20+envelope.PartOverhead) + `</Size></Part>` +
		`<Part><PartNumber>3</PartNumber><ETag>"cc"</ETag><Size>9000</Size></Part></ListPartsResult>`
	var asked []string
	sizes := func(pn int, tag string, stored int64) (int64, bool) {
		asked = append(asked, fmt.Sprintf("%d %s %d", pn, tag, stored))
		switch {
		case pn == 1 && tag == `"aa"` && stored == envelope.MinStoredPartSize:
			return 8 << 20, true
		case pn == 3 && tag == `"cc"` && stored == 9000:
			return 70000, true
		}
		return 0, false
	}
	got := string(RewritePartsWith([]byte(doc), ref, sizes))
	for _, want := range []string{
		`<UploadId>` + ref.Client + `</UploadId>`,
		`<ETag>&#34;aa-0&#34;</ETag><Size>8388608</Size>`,
		`<ETag>&#34;bb-0&#34;</ETag><Size>7340032</Size>`,
		`<ETag>&#34;cc-0&#34;</ETag><Size>70000</Size>`, // under the overhead: only the lookup knows it
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten parts lack %s\n%s", want, got)
		}
	}
	if len(asked) != 3 {
		t.Errorf("lookups %q, want one per part", asked)
	}
}

func TestUploadIDElement(t *testing.T) {
	doc := []byte(`<InitiateMultipartUploadResult><UploadId>a&amp;b</UploadId></InitiateMultipartUploadResult>`)
	id, ok := UploadIDText(doc)
	if !ok || id != "a&b" {
		t.Fatalf("UploadIDText = %q, %v", id, ok)
	}
	if got := string(SetUploadID(doc, "s3seal2~x~~a&b")); got != `<InitiateMultipartUploadResult><UploadId>s3seal2~x~~a&amp;b</UploadId></InitiateMultipartUploadResult>` {
		t.Errorf("SetUploadID: %s", got)
	}
	if _, ok := UploadIDText([]byte(`<Error/>`)); ok {
		t.Error("an upload id in a document without one")
	}
}

func TestStoreComplete(t *testing.T) {
	body := `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;aa-0&quot;</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>` +
		`<Part><ETag>"bb-0"</ETag><PartNumber>2</PartNumber><ChecksumSHA256>x</ChecksumSHA256></Part></CompleteMultipartUpload>`
	var client CompleteMultipartUpload
	if err := xml.Unmarshal([]byte(body), &client); err != nil {
		t.Fatal(err)
	}
	want := `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&#34;aa&#34;</ETag></Part>` +
		`<Part><PartNumber>2</PartNumber><ETag>&#34;bb&#34;</ETag></Part></CompleteMultipartUpload>`
	if got := string(StoreComplete(client)); got != want {
		t.Errorf("got %s", got)
	}
}

func TestRewriteAttributes(t *testing.T) {
	stored := 2*envelope.PartOverhead + 6<<20
	doc := `<GetObjectAttributesResponse><ETag>abcd-2</ETag><Checksum><ChecksumCRC64NVME>x</ChecksumCRC64NVME><ChecksumType>FULL_OBJECT</ChecksumType></Checksum>` +
		`<ObjectParts><TotalPartsCount>2</TotalPartsCount><Part><PartNumber>1</PartNumber><Size>` + itoa(5<<20+envelope.PartOverhead) + `</Size>` +
		`<ChecksumCRC32>y</ChecksumCRC32></Part></ObjectParts><StorageClass>STANDARD</StorageClass><ObjectSize>` + itoa(stored) + `</ObjectSize></GetObjectAttributesResponse>`
	got := string(RewriteAttributes([]byte(doc), []string{"ETag", "objectsize", "ObjectParts"}, ""))
	want := `<GetObjectAttributesResponse><ETag>abcd-2</ETag>` +
		`<ObjectParts><TotalPartsCount>2</TotalPartsCount><Part><PartNumber>1</PartNumber><Size>5242880</Size>` +
		`</Part></ObjectParts><ObjectSize>6291456</ObjectSize></GetObjectAttributesResponse>`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if err := xml.Unmarshal([]byte(got), new(struct{})); err != nil {
		t.Errorf("rewritten answer is not XML: %v", err)
	}
	single := `<R><ETag>"0123"</ETag><ObjectSize>` + itoa(envelope.CiphertextSize(100)) + `</ObjectSize></R>`
	if got := string(RewriteAttributes([]byte(single), []string{"ETag", "ObjectSize"}, "")); got != `<R><ETag>0123-0</ETag><ObjectSize>100</ObjectSize></R>` {
		t.Errorf("single-part: %s", got)
	}
}

// FuzzRewriteElements: the rewrite touches only the named elements, and
// Element finds what lies between an opening and a closing tag.
func FuzzRewriteElements(f *testing.F) {
	f.Add([]byte(`<a><Part>1</Part><Part>2</Part></a>`), "Part")
	f.Add([]byte(`<Part><Part></Part></Part>`), "Part")
	f.Add([]byte(`<Part>`), "Part")
	f.Add([]byte(`<ETag></ETag>`), "ETag")
	f.Fuzz(func(t *testing.T, doc []byte, name string) {
		if name == "" || strings.ContainsAny(name, "<>/") {
			return
		}
		same := rewriteElements(doc, []string{name}, func(e []byte) []byte { return e })
		if string(same) != string(doc) {
			t.Fatalf("an identity rewrite changed %q to %q", doc, same)
		}
		n := 0
		rewriteElements(doc, []string{name}, func(e []byte) []byte {
			if !strings.HasPrefix(string(e), "<"+name+">") || !strings.HasSuffix(string(e), "</"+name+">") {
				t.Fatalf("element %q is no <%s>", e, name)
			}
			n++
			return e
		})
		if n > strings.Count(string(doc), "<"+name+">") {
			t.Fatalf("%d elements of %d opening tags", n, strings.Count(string(doc), "<"+name+">"))
		}
		text, i, j, ok := Element(doc, name)
		if ok && (i > j || string(doc[i:j]) != string(text) || !strings.HasSuffix(string(doc[:i]), "<"+name+">") || !strings.HasPrefix(string(doc[j:]), "</"+name+">")) {
			t.Fatalf("Element(%q, %s) = %q at %d..%d", doc, name, text, i, j)
		}
	})
}

// An upload id of a compressed upload names its algorithm; one with an
// unknown algorithm or a broken binding is foreign.
func TestCompressedUploadID(t *testing.T) {
	upload := []byte("0123456789abcdef")
	for _, alg := range []envelope.Algorithm{envelope.AlgS2, envelope.AlgZstd} {
		id := ClientUploadIDCompressed("store~id", upload, "key-1", alg)
		ref := ParseUploadID(id)
		if ref.Compress != alg || string(ref.Upload) != string(upload) || ref.KeyID != "key-1" || ref.StoreID != "store~id" || ref.Client != id || !ref.Mapped() {
			t.Fatalf("%s: %+v", id, ref)
		}
	}
	if ref := ParseUploadID(ClientUploadID("s", upload, "")); ref.Compress != "" || ref.Upload == nil {
		t.Fatalf("plain id: %+v", ref)
	}
	for _, id := range []string{"s3seal3z~gzip~MDEyMzQ1Njc4OWFiY2RlZg~~s", "s3seal3z~s2~bad~~s", "s3seal3z~s2", "s3seal3z~"} {
		if ref := ParseUploadID(id); ref.Upload != nil || ref.Compress != "" || ref.StoreID != id {
			t.Fatalf("%s parsed: %+v", id, ref)
		}
	}
}
