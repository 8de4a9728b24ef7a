package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// StoreCase is the store one client test runs against: s3seal in front
// of an upstream store, or s3seal on its embedded store (serve's defaults,
// no S3SEAL_UPSTREAM), which must serve every client the same.
type StoreCase struct {
	// Upstream is the store behind the proxy; nil for the embedded store.
	Upstream *Upstream
	// Proxy is the s3seal StartProxy started.
	Proxy *S3seal
}

// Embedded reports whether the case is the embedded store.
func (c *StoreCase) Embedded() bool { return c.Upstream == nil }

// ForEachStore runs f as a subtest per store: up's, and the embedded one.
// The embedded store runs beside MinIO only: a pass against another store
// (CI's second) would repeat it for nothing.
func ForEachStore(t *testing.T, up *Upstream, f func(t *testing.T, c *StoreCase)) {
	t.Run(up.Name, func(t *testing.T) { f(t, &StoreCase{Upstream: up}) })
	if up.Name == "minio" {
		t.Run("embedded", func(t *testing.T) { f(t, &StoreCase{}) })
	}
}

// StartProxy starts the case's s3seal with extra settings from env.
func (c *StoreCase) StartProxy(t *testing.T, env map[string]string) *S3seal {
	t.Helper()
	all := map[string]string{}
	if c.Upstream != nil {
		all = c.Upstream.UpstreamEnv()
	}
	for k, v := range env {
		all[k] = v
	}
	c.Proxy = StartS3seal(t, all)
	return c.Proxy
}

// NewBucket creates a bucket with a unique name: directly in the upstream
// store, or through the proxy on the embedded store (which has no other
// door; StartProxy first).
func (c *StoreCase) NewBucket(t *testing.T, prefix string) string {
	t.Helper()
	name := strings.ToLower(prefix) + "-" + RandomKey(4)
	client, where := c.Proxy.S3Client(), "the embedded store"
	if c.Upstream != nil {
		client, where = c.Upstream.S3Client(), c.Upstream.Name
	}
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s in %s: %v", name, where, err)
	}
	return name
}
