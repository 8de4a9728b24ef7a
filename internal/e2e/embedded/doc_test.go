// Package embedded tests `s3seal serve` on its embedded defaults (no
// S3SEAL_UPSTREAM), started exactly as a user starts it, for what issue 27
// found wrong with the previous embedded store: keys stored literally and
// kept in their bucket, exact listings, subresources refused, multipart
// uploads that survive restarts and copy part by part, one process per data
// dir, no unauthenticated port, and an upgrade from a data dir the previous
// store wrote.
package embedded
