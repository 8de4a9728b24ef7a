package testenv

import (
	"fmt"
	"os"
)

// Upstream is how to reach a running S3 store: the end-to-end suites put
// s3seal in front of it and read it directly to see what s3seal stored.
type Upstream struct {
	// Name says which store it is ("minio", "versitygw").
	Name string
	// Endpoint is the S3 endpoint, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the store's own credentials.
	AccessKey, SecretKey string
}

// StoreEnv names the environment variable that picks the store the
// end-to-end suites run against: "minio" (the default) or "versitygw".
// .ci/run runs them once per store.
const StoreEnv = "S3SEAL_TEST_STORE"

// LaunchStore starts the store StoreEnv names, with a fresh temp data dir,
// for use from TestMain; stop stops it and removes the data dir.
func LaunchStore() (u *Upstream, stop func(), err error) {
	switch name := os.Getenv(StoreEnv); name {
	case "", "minio":
		m, err := LaunchMinIO(MinIOOptions{})
		if err != nil {
			return nil, nil, err
		}
		return &m.Upstream, m.Stop, nil
	case "versitygw":
		v, err := LaunchVersityGW()
		if err != nil {
			return nil, nil, err
		}
		return &v.Upstream, v.Stop, nil
	default:
		return nil, nil, fmt.Errorf("testenv: %s=%q: want minio or versitygw", StoreEnv, name)
	}
}
