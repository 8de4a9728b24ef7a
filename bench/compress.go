package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Compression (issue #22): the s3seal column gets rows for a compressible
// object (generated JSON-like text) PUT and GET uncompressed, with S2 and
// with zstd, each in a bucket of its own on the same proxy
// (S3SEAL_COMPRESS_BUCKETS), measured one after the other in the same run;
// the direct column has the same object stored in the plain MinIO for
// reference. The random objects of the other workloads go to an
// uncompressed bucket; "PUT ... random x1, S2 bucket" says what the
// adaptive check costs on them (it stores them uncompressed).

// compressedBuckets are the s3seal buckets with compression on, by the
// label of their rows.
var compressedBuckets = []struct{ label, bucket, alg string }{
	{"uncompressed", "", ""}, // the s3seal system's own bucket
	{"S2", "bench-s3seal-s2", "s2"},
	{"zstd", "bench-s3seal-zstd", "zstd"},
}

// compressEnv is the proxy environment that turns compression on in the
// buckets above.
func compressEnv() string {
	v := ""
	for _, b := range compressedBuckets {
		if b.bucket != "" {
			if v != "" {
				v += ","
			}
			v += b.bucket + "=" + b.alg
		}
	}
	return v
}

// textLine is the length of a generated text line.
const textLine = 64

// fillText writes the bytes [off, off+len(p)) of the text object with
// seed: 64-byte JSON-like lines, a counter and one pseudo-random field
// each, which compress about 3 to 5 times, random-access like fill.
func fillText(seed uint64, off int64, p []byte) {
	var line [textLine]byte
	for len(p) > 0 {
		n := off / textLine
		w := word(seed, uint64(n))
		b := line[:0]
		b = append(b, `{"n":`...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, `,"lvl":"`...)
		b = append(b, [4]string{"info", "warn", "dbug", "info"}[w&3]...)
		b = append(b, `","v":"`...)
		b = strconv.AppendUint(b, w>>44, 16)
		b = append(b, `"}`...)
		for len(b) < textLine-1 {
			b = append(b, ' ')
		}
		b = append(b[:textLine-1], '\n')
		k := copy(p, b[off%textLine:])
		p, off = p[k:], off+int64(k)
	}
}

// textReader reads the bytes [off, end) of the text object with seed.
type textReader struct {
	seed     uint64
	off, end int64
}

func (t *textReader) Read(p []byte) (int, error) {
	if t.off >= t.end {
		return 0, io.EOF
	}
	if rest := t.end - t.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	fillText(t.seed, t.off, p)
	t.off += int64(len(p))
	return len(p), nil
}

// textSink checks a text object's body.
type textSink struct {
	seed   uint64
	n      int64
	verify bool
	want   []byte
}

func (s *textSink) Write(p []byte) (int, error) {
	if s.verify {
		if cap(s.want) < len(p) {
			s.want = make([]byte, len(p))
		}
		want := s.want[:len(p)]
		fillText(s.seed, s.n, want)
		if string(p) != string(want) {
			return 0, errMismatch
		}
	}
	s.n += int64(len(p))
	return len(p), nil
}

func (r *runner) compression(ctx context.Context) error {
	var direct, sealed *system
	for _, s := range r.env.systems {
		switch s.name {
		case Direct:
			direct = s
		case S3seal:
			sealed = s
		}
	}
	size := r.cfg.Sizes.Large
	sz := formatSize(size)
	const key = "text/0"
	variants := []*system{direct}
	for _, b := range compressedBuckets {
		v := *sealed
		if b.bucket != "" {
			v.bucket = b.bucket // made by startEnv
		}
		variants = append(variants, &v)
	}
	label := func(i int) string {
		if i == 0 {
			return ""
		}
		return ", " + compressedBuckets[i-1].label
	}
	if r.cfg.Filter != nil && !r.cfg.Filter.MatchString("compression") {
		return nil
	}
	r.ran = true
	for i, s := range variants {
		put := fmt.Sprintf("PUT %s text x1%s", sz, label(i))
		get := fmt.Sprintf("GET %s text x1%s", sz, label(i))
		r.logf("  %-28s %s", put, s.name)
		err := r.transfer(s, put, size, func() error {
			_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key),
				Body: &textReader{seed: seedOf(key), end: size}, ContentLength: aws.Int64(size)})
			return err
		})
		if err == nil {
			r.logf("  %-28s %s", get, s.name)
			err = r.transfer(s, get, size, func() error { return s.getText(ctx, key, size, r.cfg.Verify) })
		}
		if err == nil {
			// What the store holds, read with the direct client.
			h, herr := direct.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
			if herr == nil {
				r.rep.add(fmt.Sprintf("stored/plaintext, %s text%s", sz, label(i)), "ratio", lower, s.name,
					float64(aws.ToInt64(h.ContentLength))/float64(size))
			}
			err = herr
		}
		if err != nil {
			r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("compression%s on %s: %v", label(i), s.name, err))
			r.logf("    error: %v", err)
		}
		_ = s.delete(ctx, key)
		// The same object as a multipart upload of 64 MiB parts: each part
		// compressed on its own (FORMAT.md 12.2.3).
		if err := r.compressedMultipart(ctx, s, direct, sz, size, label(i)); err != nil {
			r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("compression multipart%s on %s: %v", label(i), s.name, err))
			r.logf("    error: %v", err)
		}
	}
	// Random data to a compressing bucket: the adaptive check's cost.
	s := variants[2]
	name := fmt.Sprintf("PUT %s random x1, S2 bucket", sz)
	r.logf("  %-28s %s", name, s.name)
	if err := r.transfer(s, name, size, func() error { return s.put(ctx, largeKey(0), size) }); err != nil {
		r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("%s: %v", name, err))
	}
	_ = s.delete(ctx, largeKey(0))
	return nil
}

// getText GETs the text object key (size bytes) from s whole, checking
// its length, and every byte with verify.
func (s *system) getText(ctx context.Context, key string, size int64, verify bool) error {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	sk := &textSink{seed: seedOf(key), verify: verify}
	if _, err := io.Copy(sk, out.Body); err != nil {
		return err
	}
	if sk.n != size {
		return fmt.Errorf("GET %s: %d bytes, want %d", key, sk.n, size)
	}
	return nil
}

// mpTextPart is the part size of the multipart compression rows.
const mpTextPart = 64 << 20

// compressedMultipart PUTs the text object to s as a multipart upload of
// mpTextPart parts, GETs it whole, and records what the store holds.
func (r *runner) compressedMultipart(ctx context.Context, s, direct *system, sz string, size int64, label string) error {
	const key = "text/mp"
	put := fmt.Sprintf("PUT %s text x1 in 64 MiB parts%s", sz, label)
	get := fmt.Sprintf("GET %s text x1 in 64 MiB parts%s", sz, label)
	defer func() { _ = s.delete(ctx, key) }()
	r.logf("  %-28s %s", put, s.name)
	err := r.transfer(s, put, size, func() error {
		up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
		if err != nil {
			return err
		}
		var done []types.CompletedPart
		for n, off := int32(1), int64(0); off < size; n, off = n+1, off+mpTextPart {
			end := min(off+mpTextPart, size)
			res, err := s.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: up.UploadId,
				PartNumber: aws.Int32(n), Body: &textReader{seed: seedOf(key), off: off, end: end}, ContentLength: aws.Int64(end - off)})
			if err != nil {
				return err
			}
			done = append(done, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(n)})
		}
		_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		return err
	})
	if err != nil {
		return err
	}
	r.logf("  %-28s %s", get, s.name)
	err = r.transfer(s, get, size, func() error { return s.getText(ctx, key, size, r.cfg.Verify) })
	if err != nil {
		return err
	}
	h, err := direct.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	r.rep.add(fmt.Sprintf("stored/plaintext, %s text in 64 MiB parts%s", sz, label), "ratio", lower, s.name,
		float64(aws.ToInt64(h.ContentLength))/float64(size))
	return nil
}
