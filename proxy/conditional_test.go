package proxy_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy"
)

// TestCompleteRacingWrite: a write that lands at the key between the
// store's Complete and s3seal's finalizing copy is not overwritten by the
// copy; the client's Complete succeeds (it happened first, as on S3) and
// the later write stays.
func TestCompleteRacingWrite(t *testing.T) {
	target, _ := url.Parse(minioSrv.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	var completes atomic.Int32
	var bucket string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	direct := minioSrv.S3Client()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Query().Has("uploadId") && strings.HasSuffix(r.URL.Path, "/race") {
			if completes.Add(1) == 2 {
				// The finalizing copy's Complete: someone writes first.
				if _, err := direct.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("race"),
					Body: strings.NewReader("racer")}); err != nil {
					t.Error(err)
				}
			}
		}
		rp.ServeHTTP(w, r)
	}), ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	e := startProxyWith(t, func(c *proxy.Config) {
		c.UpstreamURL = "http://" + ln.Addr().String()
		c.Identities = proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: "k", SecretKey: "s", Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil)
	})
	e.client = testenv.NewS3Client(e.endpoint, "k", "s")
	c := e.client
	bucket = newBucket(t, e)
	ctx := context.Background()
	key := aws.String("race")
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(pattern(1000))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	out, err := direct.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "racer" {
		t.Errorf("the finalizing copy overwrote a later write: the store holds %d bytes", len(got))
	}
}
