package s3wire

import (
	"strings"
	"testing"
)

func TestFilterBuckets(t *testing.T) {
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>o</ID><DisplayName>d</DisplayName></Owner><Buckets>` +
		`<Bucket><Name>a</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>` +
		`<Bucket><Name>b</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>` +
		`<Bucket><Name>c</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>` +
		`</Buckets></ListAllMyBucketsResult>`
	got := string(FilterBuckets([]byte(doc), func(b string) bool { return b != "b" }))
	want := strings.Replace(doc, `<Bucket><Name>b</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>`, "", 1)
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := string(FilterBuckets([]byte(doc), func(string) bool { return false })); strings.Contains(got, "<Bucket>") || !strings.Contains(got, "<Buckets></Buckets>") {
		t.Errorf("none kept: %s", got)
	}
}
