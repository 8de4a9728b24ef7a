// Command fixturegen wrote testdata/embedstore-gofakes3.tar.gz: a data dir
// of `s3seal serve` on its previous embedded store (gofakes3 with its afero
// backend, commit 5371eae), holding FixtureObjects written through the
// proxy. It only works on that commit's code (it starts the s3seal built
// from the module it runs in); it is kept to say how the fixture was made.
//
//	go run ./internal/e2e/embedded/fixturegen internal/e2e/embedded/testdata/embedstore-gofakes3.tar.gz
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/e2e/embedded"
	"github.com/s3seal/s3seal/internal/testenv"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fixturegen OUT.tar.gz")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "fixturegen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	ctx := context.Background()
	p, err := testenv.LaunchS3seal(map[string]string{"S3SEAL_ACCESS_KEY": "fixture", "S3SEAL_SECRET_KEY": "fixture-secret"})
	if err != nil {
		return err
	}
	defer p.Close()
	c := p.S3Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(embedded.FixtureBucket)}); err != nil {
		return err
	}
	b := aws.String(embedded.FixtureBucket)
	for _, o := range embedded.FixtureObjects {
		plain := embedded.FixturePlaintext(o)
		var ct *string
		if o.ContentType != "" {
			ct = aws.String(o.ContentType)
		}
		switch {
		case o.CopyOf != "":
			_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String(o.Key), CopySource: aws.String(embedded.FixtureBucket + "/" + o.CopyOf)})
		case o.Parts != nil:
			var cr *s3.CreateMultipartUploadOutput
			cr, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String(o.Key), ContentType: ct, Metadata: o.Meta})
			if err != nil {
				return fmt.Errorf("create %s: %w", o.Key, err)
			}
			var done []types.CompletedPart
			off := 0
			for i, n := range o.Parts {
				up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String(o.Key), UploadId: cr.UploadId,
					PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(plain[off : off+n])})
				if err != nil {
					return fmt.Errorf("part %d of %s: %w", i+1, o.Key, err)
				}
				done = append(done, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
				off += n
			}
			_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String(o.Key), UploadId: cr.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		default:
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(o.Key), Body: bytes.NewReader(plain), ContentType: ct, Metadata: o.Meta})
		}
		if err != nil {
			return fmt.Errorf("%s: %w", o.Key, err)
		}
	}
	p.Stop()
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.Command("tar", "-czf", abs, "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-C", p.DataDir, ".")
	cmd.Stderr = os.Stderr
	return cmd.Run()
}
