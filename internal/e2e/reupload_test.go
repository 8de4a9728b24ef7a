package e2e

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestPartReupload: a part sent again replaces the earlier one; Complete
// takes the latest, and the earlier one's ETag is InvalidPart.
func TestPartReupload(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *storeEnv) {
		p := st.startProxy(t)
		c := p.S3Client()
		ctx := context.Background()
		bucket := st.newBucket(t, "reup")
		key := aws.String("obj")
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: key})
		if err != nil {
			t.Fatal(err)
		}
		send := func(n int32, b []byte) *string {
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId,
				PartNumber: aws.Int32(n), Body: bytes.NewReader(b)})
			if err != nil {
				t.Fatalf("part %d: %v", n, err)
			}
			return out.ETag
		}
		first1, second1 := randomBytes(5<<20), randomBytes(5<<20+1000)
		first2, second2 := randomBytes(300), randomBytes(70_000)
		old1 := send(1, first1)
		old2 := send(2, first2)
		new1 := send(1, second1)
		new2 := send(2, second2)
		if aws.ToString(old1) == aws.ToString(new1) {
			t.Fatalf("re-sent part 1 has the same ETag %s", aws.ToString(new1))
		}
		lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId})
		if err != nil || len(lp.Parts) != 2 || aws.ToInt64(lp.Parts[0].Size) != int64(len(second1)) ||
			aws.ToString(lp.Parts[1].ETag) != aws.ToString(new2) {
			t.Fatalf("ListParts after re-sending: %+v %v", lp, err)
		}
		complete := func(e1, e2 *string) error {
			_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: key,
				UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
					{PartNumber: aws.Int32(1), ETag: e1}, {PartNumber: aws.Int32(2), ETag: e2}}}})
			return err
		}
		if code, _ := testenv.APIError(complete(old1, new2)); code != "InvalidPart" {
			t.Errorf("Complete with a replaced part's ETag: %v", code)
		}
		if err := complete(new1, new2); err != nil {
			t.Fatalf("Complete with the latest parts: %v", err)
		}
		got, _ := getThrough(t, p, bucket, "obj")
		testenv.AssertSame(t, "object of re-sent parts", got, append(append([]byte{}, second1...), second2...))
		_ = old2
	})
}
