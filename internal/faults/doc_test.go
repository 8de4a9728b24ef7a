// Package faults runs s3seal against real processes that fail under load:
// the store (MinIO) and the networked KMS killed and restarted, the proxy
// itself killed with SIGKILL or stopped with SIGTERM mid-upload, and the
// operational endpoints (metrics listener, health probe) of the real
// binary. Each test starts its own processes, since it kills them; none
// takes more than about 40 s.
//
// It lives outside internal/e2e because those suites run once per store
// (S3SEAL_TEST_STORE) and these need a store they can kill and restart on
// the same port and data dir, which testenv provides for MinIO.
package faults
