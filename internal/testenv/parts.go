package testenv

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/envelope"
)

// StoredPartHeaders reads the first parts part headers of a multipart
// object as the store holds it, through c (a client of the store itself),
// each at the offset its predecessor's stored size gives: tests check
// what s3seal wrote, part by part.
func StoredPartHeaders(t testing.TB, c *s3.Client, bucket, key string, parts int) []*envelope.PartHeader {
	t.Helper()
	var hdrs []*envelope.PartHeader
	var off int64
	for range parts {
		r := fmt.Sprintf("bytes=%d-%d", off, off+envelope.PartHeaderSize-1)
		get, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: &r})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		ph, err := envelope.ParsePartHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, ph)
		off += ph.CiphertextSize()
	}
	return hdrs
}
