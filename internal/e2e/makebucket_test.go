package e2e

import (
	"context"
	"net/url"
	"testing"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestMakeBucketRegion: minio-go's MakeBucket with a region signs the
// CreateBucket for that region and sends it as the LocationConstraint.
// Through s3seal it must behave as it does against the store straight:
// the same outcome, and GetBucketLocation saying the same afterwards.
func TestMakeBucketRegion(t *testing.T) {
	p := startProxy(t)
	// In the proxy's default region (the store's, us-east-1): the
	// reference is the store itself.
	compareMakeBucket(t, []mbEndpoint{{"store", store.Endpoint, store.AccessKey, store.SecretKey}, {"s3seal", p.Endpoint, p.AccessKey, p.SecretKey}},
		[]string{"", testenv.Region}, []string{"eu-west-1", "us-east-1", ""})

	// A proxy that calls its region eu-central-1, in front of a store in
	// us-east-1: the reference is a MinIO in eu-central-1.
	const region = "eu-central-1"
	env := store.UpstreamEnv()
	env["S3SEAL_REGION"] = region
	p2 := testenv.StartS3seal(t, env)
	ref := testenv.StartMinIO(t, testenv.MinIOOptions{Env: []string{"MINIO_REGION=" + region}})
	t.Run("proxy-region", func(t *testing.T) {
		compareMakeBucket(t, []mbEndpoint{{"minio-" + region, ref.Endpoint, ref.AccessKey, ref.SecretKey}, {"s3seal-" + region, p2.Endpoint, p2.AccessKey, p2.SecretKey}},
			[]string{"", region}, []string{"eu-west-1", "us-east-1", "", region})
	})
}

type mbEndpoint struct{ name, url, ak, sk string }

// compareMakeBucket runs minio-go's MakeBucket for each region with
// clients of each region (minio-go's default names none and finds a
// bucket's region from GetBucketLocation), then GetBucketLocation and a
// PUT, against each endpoint, and wants the same outcomes from all.
func compareMakeBucket(t *testing.T, eps []mbEndpoint, clientRegions, regions []string) {
	ctx := context.Background()
	for _, clientRegion := range clientRegions {
		for _, region := range regions {
			t.Run("region="+region+",client="+clientRegion, func(t *testing.T) {
				type outcome struct {
					err, location, putErr string
				}
				var got []outcome
				for _, ep := range eps {
					u, _ := url.Parse(ep.url)
					mc, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(ep.ak, ep.sk, ""), Region: clientRegion, BucketLookup: minio.BucketLookupPath})
					if err != nil {
						t.Fatal(err)
					}
					bucket := "mb-" + testenv.RandomKey(4)
					var o outcome
					if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region}); err != nil {
						o.err = minio.ToErrorResponse(err).Code
						if o.err == "" {
							o.err = err.Error()
						}
					} else {
						loc, err := mc.GetBucketLocation(ctx, bucket)
						o.location = loc
						if err != nil {
							o.location = "error " + minio.ToErrorResponse(err).Code
						}
						if _, err := mc.PutObject(ctx, bucket, "k", bytesReader([]byte("x")), 1, minio.PutObjectOptions{}); err != nil {
							o.putErr = minio.ToErrorResponse(err).Code
						}
					}
					t.Logf("%s: %+v", ep.name, o)
					got = append(got, o)
				}
				for i := 1; i < len(got); i++ {
					if got[i] != got[0] {
						t.Errorf("%s: %+v, %s: %+v", eps[i].name, got[i], eps[0].name, got[0])
					}
				}
			})
		}
	}
}
