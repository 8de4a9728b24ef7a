package tools_test

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// getRange reads bucket/key with a Range header ("" for none) and returns
// the body and the response.
func getRange(ctx context.Context, c *s3.Client, bucket, key, rng string) ([]byte, *s3.GetObjectOutput, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, out, fmt.Errorf("read body: %w", err)
	}
	return body, out, nil
}

// getPart reads part n of bucket/key (GET ?partNumber=n).
func getPart(ctx context.Context, c *s3.Client, bucket, key string, n int32) ([]byte, *s3.GetObjectOutput, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), PartNumber: aws.Int32(n)})
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, out, fmt.Errorf("read body: %w", err)
	}
	return body, out, nil
}

// uploadPart sends one part and returns its ETag.
func uploadPart(ctx context.Context, c *s3.Client, bucket, key, uploadID string, n int32, body []byte) (string, error) {
	out, err := c.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		UploadId:      aws.String(uploadID),
		PartNumber:    aws.Int32(n),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		return "", fmt.Errorf("UploadPart %d (%d bytes): %w", n, len(body), err)
	}
	return aws.ToString(out.ETag), nil
}

// complete finishes an upload with parts 1..len(etags).
func complete(ctx context.Context, c *s3.Client, bucket, key, uploadID string, etags []string) (*s3.CompleteMultipartUploadOutput, error) {
	parts := make([]types.CompletedPart, len(etags))
	for i, e := range etags {
		parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(e)}
	}
	return c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(bucket),
		Key:             aws.String(key),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
}

// putMultipart uploads parts (each a slice of the object) as one multipart
// upload through c, two parts at a time, and returns the object's ETag.
func putMultipart(ctx context.Context, c *s3.Client, bucket, key string, parts [][]byte) (string, error) {
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", fmt.Errorf("CreateMultipartUpload %s: %w", key, err)
	}
	etags := make([]string, len(parts))
	errs := make(chan error, len(parts))
	sem := make(chan struct{}, 2)
	for i := range parts {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			e, err := uploadPart(ctx, c, bucket, key, aws.ToString(cr.UploadId), int32(i+1), parts[i])
			etags[i] = e
			errs <- err
		}()
	}
	for range parts {
		if err := <-errs; err != nil {
			return "", fmt.Errorf("%s: %w", key, err)
		}
	}
	out, err := complete(ctx, c, bucket, key, aws.ToString(cr.UploadId), etags)
	if err != nil {
		return "", fmt.Errorf("CompleteMultipartUpload %s: %w", key, err)
	}
	return aws.ToString(out.ETag), nil
}
