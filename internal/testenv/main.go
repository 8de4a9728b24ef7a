package testenv

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
)

// MainWithStore is the TestMain of a package whose tests share one store:
// it starts the store StoreEnv names (MinIO unless told otherwise) unless
// the run only lists tests, hands it to started, builds s3seal first if
// withS3seal (so that the first test's timings are its own), runs the
// tests, stops the store and exits. pkg names the package in start-up
// errors.
func MainWithStore(m *testing.M, pkg string, withS3seal bool, started func(*Upstream)) {
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run()) // listing only: no store needed
	}
	store, stop, err := LaunchStore()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: start the store: %v\n", pkg, err)
		os.Exit(1)
	}
	started(store)
	if withS3seal {
		if _, err := S3sealBinary(); err != nil {
			stop()
			fmt.Fprintf(os.Stderr, "%s: build s3seal: %v\n", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// ReadFile returns the contents of path or fails the test.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// AssertSame compares what a client read with the plaintext, bit for bit,
// and reports the first difference.
func AssertSame(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: got %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
}

// APIError returns the S3 error code and HTTP status of an SDK error.
func APIError(err error) (code string, status int) {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	return code, status
}
