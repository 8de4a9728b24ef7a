package migrate_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/migrate"
)

// BenchmarkMigrateVsRclone compares a migration with rclone copying the
// same ciphertext between the same two stores, in one run: the ratio
// (migrate/rclone, above 1 is faster) is its metric. The MiB to move come
// from S3SEAL_MIGRATE_BENCH (default 256):
//
//	S3SEAL_MIGRATE_BENCH=1024 go test ./migrate -run '^$' -bench MigrateVsRclone -benchtime 1x
func BenchmarkMigrateVsRclone(b *testing.B) {
	mib := 256
	if v := os.Getenv("S3SEAL_MIGRATE_BENCH"); v != "" {
		if _, err := fmt.Sscan(v, &mib); err != nil || mib < 64 {
			b.Fatalf("S3SEAL_MIGRATE_BENCH=%q: want MiB, at least 64", v)
		}
	}
	rclone, err := exec.LookPath("rclone")
	if err != nil {
		b.Fatalf("rclone not found (.ci/run installs it): %v", err)
	}
	for b.Loop() {
		migrateVsRclone(b, rclone, mib)
	}
}

func migrateVsRclone(t *testing.B, rclone string, mib int) {
	dir, kr := newKeyring(t)
	src, dst := &regA.store.Upstream, &regB.store.Upstream
	createBucket(t, src, "bench-src")
	createBucket(t, dst, "bench-migrate")
	createBucket(t, dst, "bench-rclone")
	c := keyringProxy(t, src, dir).S3Client()
	// Half in 16 MiB single objects, half in 64 MiB objects of 16 MiB parts.
	var objs []object
	for i := range mib / 2 / 16 {
		objs = append(objs, object{key: fmt.Sprintf("single/%03d", i), data: pattern(uint64(i), 16<<20)})
	}
	for i := range mib / 2 / 64 {
		objs = append(objs, object{key: fmt.Sprintf("multi/%03d", i), data: pattern(uint64(1000+i), 64<<20), parts: []int{16 << 20, 16 << 20, 16 << 20, 16 << 20}})
	}
	write(t, c, "bench-src", objs)
	var stored int64
	out, err := src.S3Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("bench-src")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		stored += aws.ToInt64(o.Size)
	}

	start := time.Now()
	rep, err := migrate.Run(context.Background(), migrate.Config{
		Src:      migrate.Side{Store: store(src), Bucket: "bench-src", KMS: keyringKMS(kr)},
		Dst:      migrate.Side{Store: store(dst), Bucket: "bench-migrate", KMS: keyringKMS(kr)},
		DstKeyID: keyring.DefaultAlias, Workers: 4,
	})
	migrateTime := time.Since(start)
	report(t, rep, err, len(objs), 0, 0)

	remote := func(name string, u *testenv.Upstream) []string {
		p := "RCLONE_CONFIG_" + name + "_"
		return []string{p + "TYPE=s3", p + "PROVIDER=Minio", p + "ENDPOINT=" + u.Endpoint, p + "ACCESS_KEY_ID=" + u.AccessKey,
			p + "SECRET_ACCESS_KEY=" + u.SecretKey, p + "REGION=" + testenv.Region}
	}
	cmd := exec.Command(rclone, "copy", "--transfers", "4", "--s3-no-check-bucket", "A:bench-src", "B:bench-rclone")
	cmd.Env = append(append([]string{"HOME=" + t.TempDir(), "RCLONE_CONFIG=/dev/null"}, remote("A", src)...), remote("B", dst)...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	start = time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("rclone: %v\n%s", err, errOut.String())
	}
	rcloneTime := time.Since(start)
	mb := float64(stored) / 1e6
	t.Logf("%d objects, %.0f MB of ciphertext: migrate %.2fs (%.0f MB/s), rclone copy %.2fs (%.0f MB/s)",
		len(objs), mb, migrateTime.Seconds(), mb/migrateTime.Seconds(), rcloneTime.Seconds(), mb/rcloneTime.Seconds())
	t.ReportMetric(rcloneTime.Seconds()/migrateTime.Seconds(), "migrate/rclone")
}
