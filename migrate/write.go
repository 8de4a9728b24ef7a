package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/objstore"
)

func headBucket(b string) *s3.HeadBucketInput { return &s3.HeadBucketInput{Bucket: aws.String(b)} }

func sealMetadata(value string) map[string]string { return map[string]string{objstore.SealKey: value} }

// counting reports the bytes read through it to the observer.
type counting struct {
	r   io.Reader
	obs Observer
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.obs.Moved(int64(n))
	}
	return n, err
}

// put writes a single object: one PUT of exactly size bytes, atomic at the
// store (a failed body leaves nothing).
func (j *job) put(ctx context.Context, key, header string, body io.Reader, size int64) error {
	dst := j.cfg.Dst
	_, err := dst.Store.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(dst.Bucket), Key: aws.String(key),
		Body: &counting{r: body, obs: j.obs}, ContentLength: aws.Int64(size), Metadata: sealMetadata(header)})
	if err != nil {
		return destProblem("write", dst.Bucket, err)
	}
	return nil
}

// serverCopy copies the source object version to key with a new header,
// at the store (both sides are one store).
func (j *job) serverCopy(ctx context.Context, so *objstore.Object, key, header string) error {
	dst := j.cfg.Dst
	_, err := dst.Store.S3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(dst.Bucket), Key: aws.String(key),
		CopySource: aws.String(copySource(so)), CopySourceIfMatch: aws.String(so.ETag),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: sealMetadata(header)})
	if err != nil {
		return destProblem("copy", dst.Bucket, err)
	}
	return nil
}

// copySource is the x-amz-copy-source of a version: bucket/key with the
// key percent-encoded but for '/'.
func copySource(o *objstore.Object) string {
	var b strings.Builder
	b.WriteString(o.Bucket)
	b.WriteByte('/')
	for i, seg := range strings.Split(o.Key, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(url.PathEscape(seg))
	}
	s := strings.ReplaceAll(b.String(), "+", "%2B")
	if o.VersionID != "" {
		s += "?versionId=" + url.QueryEscape(o.VersionID)
	}
	return s
}

func destProblem(op, bucket string, err error) error {
	switch objstore.ErrorCode(err) {
	case "NoSuchBucket":
		return fmt.Errorf("%s at the destination: bucket %q does not exist (create it first): %w", op, bucket, err)
	case "AccessDenied":
		return fmt.Errorf("%s at the destination: access denied to bucket %q (check the destination credentials): %w", op, bucket, err)
	}
	return fmt.Errorf("%s at the destination: %w", op, err)
}

// partUpload is one part of a destination upload: its number, stored
// size, and how to open its body.
type partUpload struct {
	num  int
	size int64
	body func(ctx context.Context) (io.ReadCloser, error)
}

// multipart uploads an object part by part, created with its final
// header. Any failure aborts the upload, so nothing of it stays at the
// destination. Uploads of earlier runs left at this key (a run killed
// midway) are aborted first.
func (j *job) multipart(ctx context.Context, key, header string, parts []partUpload) (err error) {
	dst := j.cfg.Dst
	s3c := dst.Store.S3
	if !j.cfg.Rewrap {
		// Not in place: there, an upload at the key may be a client's.
		j.abortStale(ctx, key)
	}
	up, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(dst.Bucket), Key: aws.String(key),
		Metadata: sealMetadata(header)})
	if err != nil {
		return destProblem("create the upload", dst.Bucket, err)
	}
	defer func() {
		if err != nil {
			// A fresh context: the run's may be what was cancelled.
			_, aerr := s3c.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: aws.String(dst.Bucket),
				Key: aws.String(key), UploadId: up.UploadId})
			if aerr != nil {
				err = fmt.Errorf("%w (and aborting the upload failed: %v)", err, aerr)
			}
		}
	}()
	done := make([]types.CompletedPart, 0, len(parts))
	for _, p := range parts {
		body, err := p.body(ctx)
		if err != nil {
			return fmt.Errorf("part %d: read the source: %w", p.num, err)
		}
		out, err := s3c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(dst.Bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(p.num)), Body: &counting{r: body, obs: j.obs}, ContentLength: aws.Int64(p.size)})
		body.Close()
		if err != nil {
			return destProblem(fmt.Sprintf("upload part %d", p.num), dst.Bucket, err)
		}
		done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(p.num))})
	}
	out, err := s3c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(dst.Bucket), Key: aws.String(key),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		return destProblem("complete the upload", dst.Bucket, err)
	}
	if n := envelope.PartsInETag(aws.ToString(out.ETag)); n != len(parts) {
		return fmt.Errorf("the destination store gave the completed object ETag %s, not a multipart ETag of %d parts", aws.ToString(out.ETag), len(parts))
	}
	return nil
}

// abortStale aborts the uploads to key at the destination, left by an
// earlier run that was stopped midway (best effort: a run does not fail
// for them).
func (j *job) abortStale(ctx context.Context, key string) {
	dst := j.cfg.Dst
	out, err := dst.Store.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(dst.Bucket), Prefix: aws.String(key)})
	if err != nil {
		return
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) != key {
			continue
		}
		_, err := dst.Store.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(dst.Bucket), Key: u.Key, UploadId: u.UploadId})
		j.log.Info("migrate: aborted an upload left by an earlier run", "key", key, "upload", aws.ToString(u.UploadId), "err", err)
	}
}

// verify opens the object at the destination with the destination's KMS
// alone: its header, sizes, manifest and every part key (VerifyHeader),
// and with VerifyFull every byte.
func (j *job) verify(ctx context.Context, key string, wantSize int64) error {
	dst := j.cfg.Dst
	do, err := dst.Store.Head(ctx, dst.Bucket, key)
	if err != nil {
		return err
	}
	if !do.Sealed() {
		return errors.New("no envelope header")
	}
	obj, meta, size, err := openSealed(ctx, dst, do, "destination")
	if err != nil {
		return err
	}
	defer obj.Close()
	if size != wantSize {
		return fmt.Errorf("%d plaintext bytes, the source has %d", size, wantSize)
	}
	if obj.Layout() == envelope.LayoutSingle {
		if j.cfg.Verify < VerifyFull {
			return nil
		}
		rc, err := dst.Store.Range(ctx, do, 0, do.Size)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, obj.WholeReader(rc, size))
		return err
	}
	pm, hdrs, err := dst.Store.PartHeaders(ctx, do)
	if err == nil {
		err = pm.VerifyFlags(obj.Version(), obj.Flags(), meta)
	}
	if err != nil {
		return err
	}
	pb, pk := meta.PartsPath(do.Bucket, do.Key)
	keys := &partKeys{side: dst, bucket: pb, role: "destination"}
	defer keys.zero()
	for _, ph := range hdrs {
		p, err := keys.open(ctx, ph, pk, meta.Upload)
		if err != nil {
			return err
		}
		p.Close()
	}
	if j.cfg.Verify < VerifyFull || size == 0 {
		return nil
	}
	rc, err := dst.Store.Range(ctx, do, 0, do.Size)
	if err != nil {
		return err
	}
	defer rc.Close()
	r := envelope.MultipartReader(rc, pm, nil, 0, size, func(ph *envelope.PartHeader) (*envelope.Part, error) {
		return keys.open(ctx, ph, pk, meta.Upload)
	})
	_, err = io.Copy(io.Discard, r)
	return err
}
