package tools_test

import (
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestToolsCompressed runs the aws cli, rclone and restic tests through an
// s3seal that compresses every bucket (S3SEAL_COMPRESS=s2, README
// "Compression"): their text files are stored compressed, their random,
// already compressed or encrypted data (restic packs, rclone crypt) is
// stored as before by the adaptive check, and every sync, check, backup and
// restore comes out as without compression.
func TestToolsCompressed(t *testing.T) {
	env := map[string]string{"S3SEAL_COMPRESS": "s2"}
	t.Run("awscli", func(t *testing.T) {
		for _, v := range testenv.AWSCLIs(t) {
			t.Run(v.Name, func(t *testing.T) {
				forEachStoreWith(t, env, func(t *testing.T, st *storeEnv) { testAWSCLI(t, st, v.Path) })
			})
		}
	})
	t.Run("rclone", func(t *testing.T) { forEachStoreWith(t, env, testRclone) })
	t.Run("restic", func(t *testing.T) { forEachStoreWith(t, env, testRestic) })
}
