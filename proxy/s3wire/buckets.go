package s3wire

import (
	"encoding/xml"
	"html"
	"regexp"
	"strings"
)

// FilterBuckets keeps the <Bucket> entries of a ListAllMyBucketsResult
// whose name keep accepts; everything else stays as the store wrote it.
func FilterBuckets(doc []byte, keep func(bucket string) bool) []byte {
	return rewriteElements(doc, []string{"Bucket"}, func(e []byte) []byte {
		name, _, _, ok := Element(e, "Name")
		if ok && keep(html.UnescapeString(string(name))) {
			return e
		}
		return nil
	})
}

// Regions. A proxy may call its region something else than its store's
// (S3SEAL_REGION): clients sign for the proxy's region, and a client that
// creates a bucket "in" it (minio-go's MakeBucket with that region, or its
// retry after being told the region) names it as the LocationConstraint,
// which the store, in its own region, would refuse. So a CreateBucket for
// the proxy's region is a CreateBucket for the store's, and
// GetBucketLocation answers the store's region as the proxy's. Any other
// region goes to the store as the client named it.

var locationConstraint = regexp.MustCompile(`(?s)<LocationConstraint(\s[^>]*)?>\s*([^<]*?)\s*</LocationConstraint>`)

// CreateBucketForStore rewrites a CreateBucket configuration whose
// LocationConstraint names proxyRegion to name storeRegion instead; for
// us-east-1, which S3 wants unnamed, the element is removed.
func CreateBucketForStore(body []byte, proxyRegion, storeRegion string) []byte {
	if proxyRegion == storeRegion {
		return body
	}
	m := locationConstraint.FindSubmatchIndex(body)
	if m == nil || !sameRegionName(string(body[m[4]:m[5]]), proxyRegion) {
		return body
	}
	if sameRegionName(storeRegion, "us-east-1") {
		return splice(body, m[0], m[1], "")
	}
	return splice(body, m[4], m[5], html.EscapeString(storeRegion))
}

// LocationForClient rewrites a GetBucketLocation answer that names
// storeRegion (empty for us-east-1) to name proxyRegion.
func LocationForClient(doc []byte, proxyRegion, storeRegion string) []byte {
	if proxyRegion == storeRegion {
		return doc
	}
	var loc struct {
		XMLName xml.Name `xml:"LocationConstraint"`
		Region  string   `xml:",chardata"`
	}
	if err := xml.Unmarshal(doc, &loc); err != nil || !sameRegionName(strings.TrimSpace(loc.Region), storeRegion) {
		return doc
	}
	if sameRegionName(proxyRegion, "us-east-1") {
		proxyRegion = ""
	}
	out, _ := xml.Marshal(struct {
		XMLName xml.Name `xml:"LocationConstraint"`
		XMLNS   string   `xml:"xmlns,attr"`
		Region  string   `xml:",chardata"`
	}{XMLNS: NS, Region: proxyRegion})
	return append([]byte(xml.Header), out...)
}

// sameRegionName compares region names as S3 does: "" and "US" are
// us-east-1.
func sameRegionName(a, b string) bool {
	norm := func(r string) string {
		if r == "" || strings.EqualFold(r, "US") {
			return "us-east-1"
		}
		return r
	}
	return norm(a) == norm(b)
}
