package proxy_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy"
)

// TestPermissionsPerOperation: object reads, object writes and bucket
// administration are granted separately; anonymous callers read objects
// and listings of their buckets, never a bucket's configuration; every
// denial is AccessDenied and logged with its reason.
func TestPermissionsPerOperation(t *testing.T) {
	suffix := strings.ToLower(rand.Text()[:8])
	mine, other := "perm-mine-"+suffix, "perm-other-"+suffix
	ids := proxy.NewStaticIdentities([]proxy.Identity{
		{AccessKey: "admin-" + suffix, SecretKey: "admin-secret", Buckets: []string{"*"}, Permissions: proxy.AllPermissions},
		{AccessKey: "reader-" + suffix, SecretKey: "reader-secret", Buckets: []string{mine}, Permissions: []string{"read"}},
		// No permissions field: read and write, as before the field existed.
		{AccessKey: "tenant-" + suffix, SecretKey: "tenant-secret", Buckets: []string{mine}},
	}, []string{mine})
	e := startProxyWith(t, func(c *proxy.Config) { c.Identities = ids })
	admin := testenv.NewS3Client(e.endpoint, "admin-"+suffix, "admin-secret")
	reader := testenv.NewS3Client(e.endpoint, "reader-"+suffix, "reader-secret")
	tenant := testenv.NewS3Client(e.endpoint, "tenant-"+suffix, "tenant-secret")
	ctx := context.Background()
	for _, b := range []string{mine, other} {
		if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tenant.PutObject(ctx, &s3.PutObjectInput{Bucket: &mine, Key: aws.String("k"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatalf("tenant write: %v", err)
	}

	// Reader: reads, never writes.
	got, err := reader.GetObject(ctx, &s3.GetObjectInput{Bucket: &mine, Key: aws.String("k")})
	if err != nil {
		t.Fatalf("reader read: %v", err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != "hello" {
		t.Errorf("reader read %q", b)
	}
	if _, err := reader.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &mine}); err != nil {
		t.Errorf("reader list: %v", err)
	}
	_, err = reader.PutObject(ctx, &s3.PutObjectInput{Bucket: &mine, Key: aws.String("k"), Body: strings.NewReader("overwritten")})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("reader PutObject: %v", err)
	}
	_, err = reader.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &mine, Key: aws.String("k")})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("reader DeleteObject: %v", err)
	}
	_, err = reader.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &mine, Key: aws.String("m")})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("reader CreateMultipartUpload: %v", err)
	}

	// Tenant without admin: objects yes, bucket configuration no.
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + mine + `/*"}]}`
	_, err = tenant.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: &mine, Policy: &policy})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("tenant PutBucketPolicy: %v", err)
	}
	_, err = tenant.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &mine})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("tenant DeleteBucket: %v", err)
	}
	_, err = tenant.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &mine})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("tenant CreateBucket: %v", err)
	}
	if _, err := admin.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: &mine, Policy: &policy}); err != nil {
		t.Errorf("admin PutBucketPolicy: %v", err)
	}
	if _, err := e.direct.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: &mine}); err != nil {
		t.Errorf("the policy the admin set: %v", err)
	}
	if !strings.Contains(e.log.String(), "lacks the admin permission") || !strings.Contains(e.log.String(), "lacks the write permission") {
		t.Error("denials are not logged with their reason")
	}

	// ListBuckets: only the identity's buckets.
	names := func(c *s3.Client) []string {
		out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, b := range out.Buckets {
			n = append(n, aws.ToString(b.Name))
		}
		return n
	}
	if n := names(tenant); !slices.Equal(n, []string{mine}) {
		t.Errorf("tenant lists buckets %v, want [%s]", n, mine)
	}
	if n := names(admin); !slices.Contains(n, mine) || !slices.Contains(n, other) {
		t.Errorf("admin lists buckets %v", n)
	}

	// Anonymous: objects and listings of its bucket, no configuration.
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/" + mine + "/k", 200},
		{"HEAD", "/" + mine + "/k", 200},
		{"GET", "/" + mine + "?list-type=2", 200},
		{"GET", "/" + mine + "?policy", 403},
		{"GET", "/" + mine + "?acl", 403},
		{"GET", "/" + mine + "?versioning", 403},
		{"GET", "/" + mine + "?location", 403},
		{"GET", "/" + mine + "/k?tagging", 403},
		{"GET", "/" + other + "/k", 403},
		{"GET", "/", 403},
		{"PUT", "/" + mine + "?policy", 403},
	} {
		req, _ := http.NewRequest(tc.method, e.endpoint+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("anonymous %s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
		if tc.status == 403 && tc.method != "HEAD" && !strings.Contains(string(body), "<Code>AccessDenied</Code>") {
			t.Errorf("anonymous %s %s: %s", tc.method, tc.path, body)
		}
	}
}

// TestExpectContinueDeniedBeforeTheBody: an identity without the write
// permission that asks Expect: 100-continue is refused before it sends
// its body.
func TestExpectContinueDeniedBeforeTheBody(t *testing.T) {
	suffix := strings.ToLower(rand.Text()[:8])
	bucket := "perm-expect-" + suffix
	ids := proxy.NewStaticIdentities([]proxy.Identity{
		{AccessKey: "admin-" + suffix, SecretKey: "admin-secret", Buckets: []string{"*"}, Permissions: proxy.AllPermissions},
		{AccessKey: "reader-" + suffix, SecretKey: "reader-secret", Buckets: []string{bucket}, Permissions: []string{"read"}},
	}, nil)
	e := startProxyWith(t, func(c *proxy.Config) { c.Identities = ids })
	ctx := context.Background()
	admin := testenv.NewS3Client(e.endpoint, "admin-"+suffix, "admin-secret")
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		who, secret string
		status      int
	}{{"reader-" + suffix, "reader-secret", 403}, {"admin-" + suffix, "admin-secret", 100}} {
		c := testenv.NewS3Client(e.endpoint, tc.who, tc.secret)
		pre, err := s3.NewPresignClient(c).PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k")})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(pre.URL)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", u.RequestURI(), u.Host)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 "+strconv.Itoa(tc.status)) {
			t.Errorf("%s: %q %v, want %d", tc.who, line, err, tc.status)
		}
	}
}
