package proxy_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/proxy"
)

// startWith runs a proxy with the given identities and domains.
func startWith(t *testing.T, ids proxy.Identities, domains []string) string {
	t.Helper()
	e := startProxyWith(t, func(c *proxy.Config) { c.Identities, c.Domains = ids, domains })
	return strings.TrimPrefix(e.endpoint, "http://")
}

func TestVirtualHostedStyle(t *testing.T) {
	access, secret := "vh-"+rand.Text()[:6], rand.Text()
	addr := startWith(t, proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil),
		[]string{"s3.test"})
	_, port, _ := net.SplitHostPort(addr)
	// Every host name dials the proxy, as a wildcard DNS record would.
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	c := testenv.NewS3Client("http://s3.test:"+port, access, secret, func(o *s3.Options) {
		o.UsePathStyle = false
		o.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: dial}}
	})
	ctx := context.Background()
	bucket := "vh-" + strings.ToLower(rand.Text()[:10])
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	data := pattern(70_000)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("a/b c"), Body: strings.NewReader(string(data))}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("a/b c"), Range: aws.String("bytes=65530-65540")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != string(data[65530:65541]) {
		t.Errorf("virtual-hosted range read %q", b)
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil || len(list.Contents) != 1 || aws.ToInt64(list.Contents[0].Size) != int64(len(data)) {
		t.Errorf("virtual-hosted listing: %v %+v", err, list)
	}
}

func TestIdentitiesFileAndBuckets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "creds.json")
	write := func(s string) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	pub := "pub-" + strings.ToLower(rand.Text()[:8])
	priv := "priv-" + strings.ToLower(rand.Text()[:8])
	write(`{"identities":[{"access_key":"admin","secret_key":"admin-secret","buckets":["*"],"permissions":["read","write","admin"]},
	  {"access_key":"alice","secret_key":"alice-secret","buckets":["` + pub + `"]}],
	  "anonymous_read_buckets":["` + pub + `"]}`)
	ids, err := proxy.LoadIdentities(path, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	addr := startWith(t, ids, nil)
	ep := "http://" + addr
	admin := testenv.NewS3Client(ep, "admin", "admin-secret")
	alice := testenv.NewS3Client(ep, "alice", "alice-secret")
	ctx := context.Background()
	for _, b := range []string{pub, priv} {
		if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.PutObject(ctx, &s3.PutObjectInput{Bucket: &pub, Key: aws.String("k"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatalf("alice in her bucket: %v", err)
	}
	_, err = alice.PutObject(ctx, &s3.PutObjectInput{Bucket: &priv, Key: aws.String("k"), Body: strings.NewReader("x")})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("alice in another bucket: %v", err)
	}
	_, err = alice.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &pub, Key: aws.String("c"), CopySource: aws.String(priv + "/k")})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("alice copying from another bucket: %v", err)
	}
	// Anonymous: reads of the public bucket only.
	resp, err := http.Get(ep + "/" + pub + "/k")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Errorf("anonymous read of public bucket: %d %q", resp.StatusCode, body)
	}
	for _, req := range []struct{ method, url string }{{"GET", ep + "/" + priv + "/k"}, {"PUT", ep + "/" + pub + "/new"}, {"DELETE", ep + "/" + pub + "/k"}} {
		r, _ := http.NewRequest(req.method, req.url, strings.NewReader(""))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>AccessDenied</Code>") {
			t.Errorf("anonymous %s %s: %d %s", req.method, req.url, resp.StatusCode, body)
		}
	}
	// Revoking alice takes effect without a restart.
	time.Sleep(1100 * time.Millisecond)
	write(`{"identities":[{"access_key":"admin","secret_key":"admin-secret","buckets":["*"],"permissions":["read","write","admin"]}]}`)
	time.Sleep(1100 * time.Millisecond)
	_, err = alice.GetObject(ctx, &s3.GetObjectInput{Bucket: &pub, Key: aws.String("k")})
	if apiCode(err) != "InvalidAccessKeyId" {
		t.Errorf("revoked key: %v", err)
	}
}

func TestRegionCheck(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	bucket := newBucket(t, e)
	creds, _ := e.client.Options().Credentials.Retrieve(ctx)
	for _, tc := range []struct {
		region string
		ok     bool
	}{{"us-east-1", true}, {"US", true}, {"eu-west-1", false}} {
		c := testenv.NewS3Client(e.endpoint, creds.AccessKeyID, creds.SecretAccessKey, func(o *s3.Options) { o.Region = tc.region })
		_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket})
		if (err == nil) != tc.ok {
			t.Errorf("region %s: %v", tc.region, err)
		}
		if !tc.ok {
			_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
			if apiCode(err) != "AuthorizationHeaderMalformed" {
				t.Errorf("region %s: %v", tc.region, err)
			}
		}
	}
}

func TestHealthEndpointsAreNotBuckets(t *testing.T) {
	e := startProxy(t)
	ctx := context.Background()
	// "metrics" is TestMetricsEndpoint's; these buckets are removed again
	// because the package shares one MinIO.
	for _, name := range []string{"healthz", "readyz"} {
		if _, err := e.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			e.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: aws.String("k")})
			e.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
		})
		if _, err := e.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
		list, err := e.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
		if err != nil || len(list.Contents) != 1 {
			t.Errorf("listing bucket %s: %v", name, err)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(e.endpoint + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("unsigned %s: %d", path, resp.StatusCode)
		}
	}
}
