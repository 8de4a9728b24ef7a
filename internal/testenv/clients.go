package testenv

import (
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// Region is the region every test component uses.
const Region = "us-east-1"

// NewS3Client returns an aws-sdk-go-v2 S3 client for endpoint
// (http://host:port) with path-style addressing, region us-east-1 and
// static credentials. It does not read the host's AWS config or
// environment, and it does not retry (one call is one HTTP request, so a
// test sees exactly what the server answered); optFns may change that.
func NewS3Client(endpoint, accessKey, secretKey string, optFns ...func(*s3.Options)) *s3.Client {
	opts := s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		Retryer:      aws.NopRetryer{},
		// What config.LoadDefaultConfig sets, so tests see the SDK's
		// default checksums (options left zero would send none).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}
	return s3.New(opts, optFns...)
}

// NewMinioClient returns a minio-go client for endpoint (http://host:port)
// with path-style addressing and region us-east-1.
func NewMinioClient(endpoint, accessKey, secretKey string) (*minio.Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	if u.Host == "" {
		return nil, fmt.Errorf("testenv: endpoint %q has no host", endpoint)
	}
	return minio.New(u.Host, &minio.Options{
		Creds:        miniocreds.NewStaticV4(accessKey, secretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       Region,
		BucketLookup: minio.BucketLookupPath,
	})
}

// S3Client returns an aws-sdk-go-v2 client with the store's credentials.
func (u *Upstream) S3Client(optFns ...func(*s3.Options)) *s3.Client {
	return NewS3Client(u.Endpoint, u.AccessKey, u.SecretKey, optFns...)
}

// MinioClient returns a minio-go client with the store's credentials.
func (u *Upstream) MinioClient() (*minio.Client, error) {
	return NewMinioClient(u.Endpoint, u.AccessKey, u.SecretKey)
}

// S3Client returns an aws-sdk-go-v2 client signing with the proxy's client
// credentials.
func (s *S3seal) S3Client(optFns ...func(*s3.Options)) *s3.Client {
	return NewS3Client(s.Endpoint, s.AccessKey, s.SecretKey, optFns...)
}

// MinioClient returns a minio-go client signing with the proxy's client
// credentials.
func (s *S3seal) MinioClient() (*minio.Client, error) {
	return NewMinioClient(s.Endpoint, s.AccessKey, s.SecretKey)
}

// UpstreamEnv returns the S3SEAL_* settings that point a proxy at the
// store.
func (u *Upstream) UpstreamEnv() map[string]string {
	return map[string]string{
		"S3SEAL_UPSTREAM":            u.Endpoint,
		"S3SEAL_UPSTREAM_REGION":     Region,
		"S3SEAL_UPSTREAM_ACCESS_KEY": u.AccessKey,
		"S3SEAL_UPSTREAM_SECRET_KEY": u.SecretKey,
	}
}
