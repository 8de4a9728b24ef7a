package tools_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/testenv"
)

// TestToolsCompressed runs the aws cli, rclone and restic tests through an
// s3seal that compresses every bucket (S3SEAL_COMPRESS=s2, README
// "Compression"): their text-like files are stored compressed, their
// random, already compressed or encrypted data (restic packs; random files)
// is stored as before by the adaptive check, and every sync, check, backup
// and restore comes out as without compression. "stored" checks, at the
// store, that the first kind is compressed and the second is not.
func TestToolsCompressed(t *testing.T) {
	env := map[string]string{"S3SEAL_COMPRESS": "s2"}
	t.Run("stored", func(t *testing.T) {
		forEachStoreWith(t, env, func(t *testing.T, st *storeEnv) {
			if st.Embedded() {
				t.Skip("the store's objects are read straight from MinIO")
			}
			p := st.startProxy(t, nil)
			bucket := st.newBucket(t, "compressed")
			src := t.TempDir()
			text := strings.Repeat(`{"level":"info","msg":"backup done","files":1234}`+"\n", 20_000)
			if err := os.WriteFile(filepath.Join(src, "app.log"), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "pack.bin"), randomBytes(3, 1<<20), 0o600); err != nil {
				t.Fatal(err)
			}
			cli := newAWSCLI(t, testenv.AWSCLIs(t)[0].Path, p.Endpoint, p.AccessKey, p.SecretKey)
			cli.ok(t, "s3", "sync", src, "s3://"+bucket+"/")
			for key, want := range map[string]bool{"app.log": true, "pack.bin": false} {
				head, err := direct().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				h, err := envelope.ParseHeader(head.Metadata["s3seal"])
				if err != nil {
					t.Fatal(err)
				}
				if got := h.Flags()&envelope.FlagCompressed != 0; got != want {
					t.Errorf("%s: stored compressed %v, want %v (%d stored bytes)", key, got, want, aws.ToInt64(head.ContentLength))
				}
			}
			out := t.TempDir()
			cli.ok(t, "s3", "sync", "s3://"+bucket+"/", out)
			assertSameTree(t, "aws s3 sync through a compressing s3seal", src, out)
		})
	})
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
