package s3wire

import (
	"fmt"
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

func TestCreateBucketForStore(t *testing.T) {
	const cfg = `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>`
	for _, tt := range []struct{ name, body, proxy, store, want string }{
		{"same regions", fmt.Sprintf(cfg, "eu-central-1"), "eu-central-1", "eu-central-1", fmt.Sprintf(cfg, "eu-central-1")},
		{"proxy's region to the store's", fmt.Sprintf(cfg, "eu-central-1"), "eu-central-1", "eu-west-3", fmt.Sprintf(cfg, "eu-west-3")},
		{"proxy's region to us-east-1: unnamed", fmt.Sprintf(cfg, " eu-central-1 "), "eu-central-1", "us-east-1", `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></CreateBucketConfiguration>`},
		{"another region as sent", fmt.Sprintf(cfg, "ap-south-1"), "eu-central-1", "us-east-1", fmt.Sprintf(cfg, "ap-south-1")},
		{"no constraint", `<CreateBucketConfiguration/>`, "eu-central-1", "us-east-1", `<CreateBucketConfiguration/>`},
	} {
		if got := string(CreateBucketForStore([]byte(tt.body), tt.proxy, tt.store)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestLocationForClient(t *testing.T) {
	const doc = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">%s</LocationConstraint>`
	for _, tt := range []struct{ name, doc, proxy, store, want string }{
		{"same regions", fmt.Sprintf(doc, ""), "us-east-1", "us-east-1", fmt.Sprintf(doc, "")},
		{"store's us-east-1 as the proxy's", fmt.Sprintf(doc, ""), "eu-central-1", "us-east-1", fmt.Sprintf(doc, "eu-central-1")},
		{"store's region as us-east-1", fmt.Sprintf(doc, "eu-west-3"), "us-east-1", "eu-west-3", fmt.Sprintf(doc, "")},
		{"another region as the store says", fmt.Sprintf(doc, "ap-south-1"), "eu-central-1", "us-east-1", fmt.Sprintf(doc, "ap-south-1")},
		{"not a location", `<Error/>`, "eu-central-1", "us-east-1", `<Error/>`},
	} {
		if got := string(LocationForClient([]byte(tt.doc), tt.proxy, tt.store)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}
