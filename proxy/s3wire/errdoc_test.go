package s3wire

import (
	"strings"
	"testing"
)

func TestStoreErrorDoc(t *testing.T) {
	in := `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>k</Key><BucketName>b</BucketName><Resource>/b/k</Resource><RequestId>STORE</RequestId><HostId>STOREHOST</HostId></Error>`
	out, ok := StoreErrorDoc([]byte(in), "abc123")
	if !ok {
		t.Fatal("not an error document")
	}
	s := string(out)
	for _, want := range []string{"<Code>NoSuchKey</Code>", "<Key>k</Key>", "<BucketName>b</BucketName>", "<Resource>/b/k</Resource>",
		"<RequestId>abc123</RequestId>", "<HostId>abc123</HostId>"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %s in %s", want, s)
		}
	}
	if strings.Contains(s, "STORE") {
		t.Errorf("store ids kept: %s", s)
	}
	for _, bad := range []string{"", "<ListBucketResult/>", "<Error></Error>", "not xml"} {
		if _, ok := StoreErrorDoc([]byte(bad), "x"); ok {
			t.Errorf("%q taken for an error document", bad)
		}
	}
}

func FuzzStoreErrorDoc(f *testing.F) {
	f.Add(`<Error><Code>A</Code><X>1</X></Error>`)
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := StoreErrorDoc([]byte(in), "id")
		if ok && !strings.Contains(string(out), "<RequestId>id</RequestId>") {
			t.Fatalf("%q -> %q", in, out)
		}
	})
}
