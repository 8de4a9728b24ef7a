package awskms

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
)

// regionLog records the region each KMS request is signed for (the
// credential scope of its Authorization header), on its way to moto.
type regionLog struct {
	mu      sync.Mutex
	regions []string
}

var scopeRegion = regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/kms/`)

func (l *regionLog) RoundTrip(r *http.Request) (*http.Response, error) {
	m := scopeRegion.FindStringSubmatch(r.Header.Get("Authorization"))
	l.mu.Lock()
	if m != nil {
		l.regions = append(l.regions, m[1])
	} else {
		l.regions = append(l.regions, "?")
	}
	l.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (l *regionLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.regions
	l.regions = nil
	return r
}

// TestMultiRegionReplica: a data key wrapped by the primary of a
// multi-Region key in us-east-1 is unwrapped in us-west-2 by the replica
// there, with the header's us-east-1 ARN as the key id and no call to
// us-east-1; a key with no replica in us-west-2 is still used in its own
// region, and so is an ordinary key.
func TestMultiRegionReplica(t *testing.T) {
	moto := testenv.StartMotoMRK(t)
	ctx := context.Background()
	newClient := func(region string) (*Client, *regionLog) {
		l := &regionLog{}
		c, err := New(ctx, Config{Region: region, Endpoint: moto.Endpoint, FollowARNRegion: true, HTTPClient: &http.Client{Transport: l}})
		if err != nil {
			t.Fatal(err)
		}
		return c, l
	}
	east, eastLog := newClient("us-east-1")
	west, westLog := newClient("us-west-2")
	mk := func(multi bool) string {
		out, err := east.API().CreateKey(ctx, &awskms.CreateKeyInput{MultiRegion: aws.Bool(multi)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.KeyMetadata.Arn)
	}
	primary, lonely, plain := mk(true), mk(true), mk(false)
	// moto finds the key to replicate by its bare id only.
	rep, err := east.API().ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: aws.String(kms.MultiRegionID(primary)), ReplicaRegion: aws.String("us-west-2")})
	if err != nil {
		t.Fatal(err)
	}
	replica := aws.ToString(rep.ReplicaKeyMetadata.Arn)
	if kms.MultiRegionID(replica) != kms.MultiRegionID(primary) || replica == primary {
		t.Fatalf("replica %s of %s", replica, primary)
	}
	bctx := kms.BucketContext("photos")
	eastLog.take()

	dk, err := east.GenerateDataKey(ctx, primary, bctx)
	if err != nil {
		t.Fatal(err)
	}
	if dk.KeyID != primary {
		t.Fatalf("KeyID %s, want %s", dk.KeyID, primary)
	}
	pt, err := west.Decrypt(ctx, dk.KeyID, dk.Ciphertext, bctx)
	if err != nil || !bytes.Equal(pt, dk.Plaintext) {
		t.Fatalf("decrypt in us-west-2 with the us-east-1 ARN: %v", err)
	}
	if got := westLog.take(); !slices.Equal(got, []string{"us-west-2"}) {
		t.Fatalf("calls went to %v, want us-west-2 only", got)
	}
	// The context still binds.
	if _, err := west.Decrypt(ctx, dk.KeyID, dk.Ciphertext, kms.BucketContext("videos")); kms.ErrorCode(err) != kms.CodeInvalidCiphertext {
		t.Fatalf("context mismatch at the replica: %v", err)
	}
	westLog.take()

	// Pointed at the primary from us-west-2, the proxy wraps with the
	// nearest replica; the header then names it.
	dk2, err := west.GenerateDataKey(ctx, primary, bctx)
	if err != nil {
		t.Fatal(err)
	}
	if dk2.KeyID != replica {
		t.Fatalf("KeyID %s, want the replica %s", dk2.KeyID, replica)
	}
	if got := westLog.take(); !slices.Equal(got, []string{"us-west-2"}) {
		t.Fatalf("calls went to %v, want us-west-2 only", got)
	}
	// ... and the primary's region reads it back.
	if pt, err := east.Decrypt(ctx, dk2.KeyID, dk2.Ciphertext, bctx); err != nil || !bytes.Equal(pt, dk2.Plaintext) {
		t.Fatalf("decrypt in us-east-1 with the us-west-2 ARN: %v", err)
	}
	md, err := west.DescribeKey(ctx, primary)
	if err != nil || md.Arn != replica {
		t.Fatalf("DescribeKey from us-west-2: %+v, %v", md, err)
	}
	westLog.take()

	// No replica in us-west-2: the key's own region.
	dk3, err := east.GenerateDataKey(ctx, lonely, bctx)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := west.Decrypt(ctx, dk3.KeyID, dk3.Ciphertext, bctx); err != nil || !bytes.Equal(pt, dk3.Plaintext) {
		t.Fatalf("decrypt of an unreplicated mrk key from us-west-2: %v", err)
	}
	if got := westLog.take(); !slices.Equal(got, []string{"us-west-2", "us-east-1"}) {
		t.Fatalf("calls went to %v, want us-west-2 then us-east-1", got)
	}
	// An ordinary key: straight to its region.
	dk4, err := east.GenerateDataKey(ctx, plain, bctx)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := west.Decrypt(ctx, dk4.KeyID, dk4.Ciphertext, bctx); err != nil || !bytes.Equal(pt, dk4.Plaintext) {
		t.Fatal(err)
	}
	if got := westLog.take(); !slices.Equal(got, []string{"us-east-1"}) {
		t.Fatalf("calls went to %v, want us-east-1", got)
	}
}
