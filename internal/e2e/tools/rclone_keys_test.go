package tools_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// TestRcloneKeyCharacters: rclone copyto and moveto, server-side copies
// whose x-amz-copy-source holds "&" and other characters raw, for keys of
// every kind.
func TestRcloneKeyCharacters(t *testing.T) { forEachStore(t, testRcloneKeyCharacters) }

func testRcloneKeyCharacters(t *testing.T, st *storeEnv) {
	p := st.startProxy(t, nil)
	bucket := st.newBucket(t, "rckeys")
	rc := newRclone(t, p)
	dir := t.TempDir()
	for i, name := range []string{"amp&.txt", "plus+sign.txt", "100%.txt", "what?.txt", "with space.txt", "a=b;c:d@e,f$g!h.txt", "café 日本.txt"} {
		plain := randomBytes(uint64(i), 3000+i)
		local := filepath.Join(dir, "f")
		if err := os.WriteFile(local, plain, 0o600); err != nil {
			t.Fatal(err)
		}
		remote := "S:" + bucket + "/src/" + name
		rc.ok(t, "copyto", local, remote)
		rc.ok(t, "copyto", remote, "S:"+bucket+"/copied/"+name)
		rc.ok(t, "moveto", "S:"+bucket+"/copied/"+name, "S:"+bucket+"/moved/"+name)
		stdout, _ := rc.ok(t, "cat", "S:"+bucket+"/moved/"+name)
		testenv.AssertSame(t, "cat after copyto and moveto of "+name, []byte(stdout), plain)
		if stdout, _ := rc.ok(t, "lsf", "S:"+bucket+"/copied/"); stdout != "" {
			t.Errorf("moveto left %q", stdout)
		}
	}
}
