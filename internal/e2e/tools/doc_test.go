// Package tools_test proves that sync and backup tools work through s3seal
// exactly as against the store itself (issue 6): the aws cli, rclone, s3cmd
// and restic run as child processes against a real `s3seal serve`, once in
// front of a real MinIO and once on its embedded store (serve's defaults),
// and every byte they read back is compared with what they wrote. Beside them, aws-sdk-go-v2 sends one multipart upload's parts to
// two proxy processes (one restarted midway), and a property test compares
// thousands of random ranges of random multipart objects with the plaintext.
//
// TestMain starts one MinIO for the package; each test starts its own proxy
// and its own bucket. No test skips: a missing client is a failure (.ci/run
// installs them).
package tools_test
