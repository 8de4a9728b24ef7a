// Package objstore reads and writes s3seal objects straight at an S3 store
// (aws-sdk-go-v2), without a proxy: what the decrypt, inspect, migrate and
// rewrap commands share. It knows the store's side of FORMAT.md (where the
// object header lives, how part headers are fetched) and nothing of KMSs.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/envelope"
)

// Config locates a store.
type Config struct {
	// Endpoint is the store's URL, e.g. http://127.0.0.1:9000.
	Endpoint string
	// Region requests are signed for.
	Region string
	// AccessKey and SecretKey are the store's credentials.
	AccessKey, SecretKey string
	// HTTPClient overrides the SDK's HTTP client if set.
	HTTPClient aws.HTTPClient
}

// Store is one S3 endpoint with one set of credentials.
type Store struct {
	// S3 is the client, path-style. Over plain HTTP it sends
	// UNSIGNED-PAYLOAD and no optional checksums, so that bodies stream
	// (the SDK would otherwise read a body twice, and cannot rewind a
	// stream); over HTTPS the SDK's trailing checksum lets the store check
	// what it receives.
	S3 *s3.Client
	// ID names the endpoint and credentials: two Stores with the same ID
	// can copy objects between each other server-side.
	ID string
}

// New returns a Store for cfg. It makes no request.
func New(cfg Config) *Store {
	opts := s3.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
	}
	if cfg.HTTPClient != nil {
		opts.HTTPClient = cfg.HTTPClient
	}
	if !strings.HasPrefix(strings.ToLower(cfg.Endpoint), "https://") {
		opts.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		opts.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		opts.APIOptions = append(opts.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}
	return &Store{S3: s3.New(opts), ID: strings.TrimRight(cfg.Endpoint, "/") + "\x00" + cfg.AccessKey}
}

// SealKey is the user-metadata name (without x-amz-meta-) of the object
// header.
const SealKey = "s3seal"

// ContentHeaders are the standard headers that say how to treat an object
// (FORMAT.md 11.4, field "h"), by canonical name.
var ContentHeaders = []string{
	"Content-Type", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Cache-Control", "Expires",
}

// Object is what a HEAD says about one object version.
type Object struct {
	Bucket, Key string
	// ETag is the store's, quoted as the store sent it.
	ETag      string
	Size      int64
	VersionID string
	Modified  time.Time
	// HeaderValue is the x-amz-meta-s3seal value: empty when the object was
	// not written by s3seal.
	HeaderValue string
	// User is the user metadata in clear other than the object header
	// (names lowercased).
	User map[string]string
	// Content holds the content headers the store keeps in clear.
	Content map[string]string
}

// Parts is the part count of a multipart object (the N of its "-N" ETag),
// 0 for a single one.
func (o *Object) Parts() int { return envelope.PartsInETag(o.ETag) }

// Sealed reports whether the object carries an s3seal object header.
func (o *Object) Sealed() bool { return o.HeaderValue != "" }

// ErrNotFound: no such object (or bucket).
var ErrNotFound = errors.New("not found")

// Head reads one object's metadata.
func (s *Store) Head(ctx context.Context, bucket, key string) (*Object, error) {
	out, err := s.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		if IsNotFound(err) {
			return nil, fmt.Errorf("s3://%s/%s: %w", bucket, key, ErrNotFound)
		}
		return nil, err
	}
	o := &Object{Bucket: bucket, Key: key, ETag: aws.ToString(out.ETag), Size: aws.ToInt64(out.ContentLength),
		VersionID: aws.ToString(out.VersionId), Modified: aws.ToTime(out.LastModified)}
	for k, v := range out.Metadata {
		k = strings.ToLower(k)
		if k == SealKey {
			o.HeaderValue = v
			continue
		}
		if o.User == nil {
			o.User = map[string]string{}
		}
		o.User[k] = v
	}
	for name, v := range map[string]*string{
		"Content-Type": out.ContentType, "Content-Disposition": out.ContentDisposition,
		"Content-Encoding": out.ContentEncoding, "Content-Language": out.ContentLanguage,
		"Cache-Control": out.CacheControl, "Expires": out.ExpiresString,
	} {
		if v := aws.ToString(v); v != "" {
			if o.Content == nil {
				o.Content = map[string]string{}
			}
			o.Content[name] = v
		}
	}
	return o, nil
}

// IsNotFound reports whether err is S3's answer for a missing object or
// bucket.
func IsNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NotFound", "NoSuchKey", "NoSuchBucket", "404":
			return true
		}
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// ErrorCode returns the S3 error code of err, or "".
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Range returns stored bytes [from, to) of the object version o names
// (If-Match its ETag, so that a concurrent overwrite fails instead of
// mixing two versions). The caller closes it.
func (s *Store) Range(ctx context.Context, o *Object, from, to int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &o.Bucket, Key: &o.Key, IfMatch: aws.String(o.ETag)}
	if o.VersionID != "" {
		in.VersionId = aws.String(o.VersionID)
	}
	if from != 0 || to != o.Size {
		if to <= from {
			return io.NopCloser(strings.NewReader("")), nil
		}
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", from, to-1))
	}
	out, err := s.S3.GetObject(ctx, in)
	if err != nil {
		return nil, err
	}
	return &exactReader{rc: out.Body, left: to - from}, nil
}

// exactReader fails with io.ErrUnexpectedEOF when the store sends fewer
// bytes than asked for, and never reads past them.
type exactReader struct {
	rc   io.ReadCloser
	left int64
}

func (r *exactReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.rc.Read(p)
	r.left -= int64(n)
	if err == io.EOF && r.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (r *exactReader) Close() error { return r.rc.Close() }

// PartHeaders reads the part headers of a multipart object (envelope
// ReadPartMap: one ranged GET of PartHeaderSize bytes per part, in parallel
// for equal-sized parts) and returns the map with the headers in stored
// order. The map is not verified: the caller checks it against the sealed
// manifest (PartMap.Verify).
func (s *Store) PartHeaders(ctx context.Context, o *Object) (*envelope.PartMap, []*envelope.PartHeader, error) {
	var mu sync.Mutex
	got := map[int64]*envelope.PartHeader{}
	pm, err := envelope.ReadPartMap(o.Parts(), o.Size, func(off int64) (*envelope.PartHeader, error) {
		rc, err := s.Range(ctx, o, off, off+envelope.PartHeaderSize)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		buf := make([]byte, envelope.PartHeaderSize)
		if _, err := io.ReadFull(rc, buf); err != nil {
			return nil, fmt.Errorf("part header at byte %d: %w", off, err)
		}
		ph, err := envelope.ParsePartHeader(buf)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		got[off] = ph
		mu.Unlock()
		return ph, nil
	})
	if err != nil {
		return nil, nil, err
	}
	hdrs := make([]*envelope.PartHeader, pm.Parts())
	for i := range hdrs {
		_, _, _, st := pm.Part(i)
		hdrs[i] = got[st]
		if hdrs[i] == nil {
			return nil, nil, fmt.Errorf("%w: part header at byte %d not read", envelope.ErrFormat, st)
		}
	}
	return pm, hdrs, nil
}

// Lister walks the objects under a prefix, in the store's (key) order.
type Lister struct {
	p *s3.ListObjectsV2Paginator
}

// Listed is one object of a listing.
type Listed struct {
	Key  string
	Size int64
	ETag string
}

// List lists bucket's objects whose keys start with prefix.
func (s *Store) List(bucket, prefix string) *Lister {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	return &Lister{p: s3.NewListObjectsV2Paginator(s.S3, in)}
}

// Next returns the next page, or nil, io.EOF after the last.
func (l *Lister) Next(ctx context.Context) ([]Listed, error) {
	if !l.p.HasMorePages() {
		return nil, io.EOF
	}
	page, err := l.p.NextPage(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Listed, 0, len(page.Contents))
	for _, c := range page.Contents {
		out = append(out, Listed{Key: aws.ToString(c.Key), Size: aws.ToInt64(c.Size), ETag: aws.ToString(c.ETag)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
