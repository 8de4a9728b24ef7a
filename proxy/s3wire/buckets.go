package s3wire

import "html"

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
