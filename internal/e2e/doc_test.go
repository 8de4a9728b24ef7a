// Package e2e holds end-to-end tests: real S3 clients (aws cli, boto3,
// aws-sdk-go-v2, minio-go, @aws-sdk/client-s3) talk to a real `s3seal serve` in
// front of a real MinIO (the client tests also on its embedded store), and
// the tests read what MinIO stored directly to check that it is ciphertext,
// that tampering with it is detected, and that bad signatures never reach
// the store.
//
// TestMain starts one MinIO for the package; each test starts its own proxy
// (a fresh data dir, so a fresh embedded keyring) and its own buckets.
package e2e
