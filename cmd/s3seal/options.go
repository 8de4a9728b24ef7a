package main

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3seal/s3seal/kms/awskms"
)

// The option groups several commands share, each declared once and
// embedded with kong's embed:"". Their env tags lack the S3SEAL_ prefix
// because kong prepends the embedding's envprefix to them: a command
// embeds a group with envprefix:"S3SEAL_" (--upstream, S3SEAL_UPSTREAM),
// and one that needs a group twice, such as a copy between two stores,
// with prefix:"src-" envprefix:"S3SEAL_SRC_" (--src-upstream,
// S3SEAL_SRC_UPSTREAM) and the same for dst-.

// UpstreamOptions locate the S3 store that holds the encrypted objects.
type UpstreamOptions struct {
	Upstream          string `env:"UPSTREAM" help:"URL of the S3 store, e.g. http://127.0.0.1:9000. Unset, serve runs the embedded store in the data dir, and decrypt reads that store (${env})."`
	UpstreamRegion    string `env:"UPSTREAM_REGION" default:"us-east-1" help:"Region to sign requests to the store for (${env})."`
	UpstreamAccessKey string `env:"UPSTREAM_ACCESS_KEY" help:"Access key for the store (${env})."`
	UpstreamSecretKey string `env:"UPSTREAM_SECRET_KEY" help:"Secret key for the store (${env})."`
	UpstreamCAFile    string `env:"UPSTREAM_CA_FILE" help:"PEM file of the certificate authorities an https store's certificate is verified against, instead of the system's (${env})."`
}

// LimitOptions bound what clients can hold of the proxy (issue #19); the
// defaults held in the load test (internal/load). Every refusal for load
// is 503 SlowDown with Retry-After, which SDKs retry.
type LimitOptions struct {
	HeaderTimeout          time.Duration `env:"HEADER_TIMEOUT" default:"30s" help:"Time a client has from a request's first byte to the end of its headers (and from connecting to its first byte); slower connections are closed (${env})."`
	BodyTimeout            time.Duration `env:"BODY_TIMEOUT" default:"30s" help:"Longest pause allowed while a client sends a request body or takes a response body: a client that sends nothing for this long mid-upload is answered 400 RequestTimeout and disconnected, and nothing is stored; one that reads nothing of a download for this long is disconnected (${env})."`
	KeepAliveAfter         time.Duration `env:"KEEPALIVE_AFTER" default:"10s" help:"How long CompleteMultipartUpload (which copies every part at the store to seal the object's part list) or CopyObject may work before the client is sent 200 OK and a space every 5 s until the result, or an error document, follows, as S3 does; clients such as the aws cli give up after 60 s without a byte (${env})."`
	MaxRequests            int           `env:"MAX_REQUESTS" default:"1024" help:"Requests served at once; more are answered 503 SlowDown with Retry-After, which SDKs retry. 0: no bound (${env})."`
	MaxRequestsPerIdentity int           `env:"MAX_REQUESTS_PER_IDENTITY" default:"256" help:"Requests one access key may have in service at once (anonymous requests count as one identity), so that one client cannot take every slot; more are answered 503 SlowDown with Retry-After. 0: no bound (${env})."`
	UpstreamMaxConns       int           `env:"UPSTREAM_MAX_CONNS" default:"1024" help:"Connections open to the store at most (${env})."`
	UpstreamConnWait       time.Duration `env:"UPSTREAM_CONN_WAIT" default:"5s" help:"How long a request waits for a store connection when all are busy before it is answered 503 SlowDown with Retry-After (${env})."`
}

// KMSOptions choose the KMS that wraps and unwraps data keys.
type KMSOptions struct {
	KMS         string `env:"KMS" enum:"local,aws" default:"local" help:"Key management: 'local' (embedded keyring in the data dir) or 'aws' (AWS KMS or a KMS-compatible endpoint) (${env})."`
	KMSRegion   string `env:"KMS_REGION" help:"AWS KMS region; defaults to the AWS SDK's configuration (${env})."`
	KMSEndpoint string `env:"KMS_ENDPOINT" help:"Custom KMS endpoint URL, for KMS-compatible services and tests (${env})."`
	// The KMS's own credentials: the two sides of a migration may be two
	// AWS accounts, each with its KMS, and neither need be the account of
	// the store's keys or of the environment.
	KMSAccessKey    string `env:"KMS_ACCESS_KEY" help:"Access key for AWS KMS (--kms aws). Unset, the AWS SDK's default credentials: AWS_ACCESS_KEY_ID, shared files, SSO, roles (${env})."`
	KMSSecretKey    string `env:"KMS_SECRET_KEY" help:"Secret key of --kms-access-key; prefer the environment variable to the flag, which other users can see in the process list (${env})."`
	KMSSessionToken string `env:"KMS_SESSION_TOKEN" help:"Session token of temporary --kms-access-key credentials (${env})."`
	KMSProfile      string `env:"KMS_PROFILE" help:"Profile of the AWS shared config and credentials files for AWS KMS, instead of --kms-access-key (${env})."`
}

// awsConfig is the AWS KMS client configuration the options give; flag is
// the prefix of their flags ("src-", "dst-" or ""), for errors. A key named
// by its ARN is used in its own region: objects migrated or copied between
// regions name keys of several.
func (o *KMSOptions) awsConfig(flag string) (awskms.Config, error) {
	cfg := awskms.Config{Region: o.KMSRegion, Endpoint: o.KMSEndpoint, Profile: o.KMSProfile, FollowARNRegion: true}
	switch {
	case o.KMSAccessKey != "" && o.KMSProfile != "":
		return cfg, fmt.Errorf("give --%skms-access-key or --%skms-profile, not both", flag, flag)
	case o.KMSAccessKey == "" && (o.KMSSecretKey != "" || o.KMSSessionToken != ""):
		return cfg, fmt.Errorf("--%skms-secret-key and --%skms-session-token need --%skms-access-key", flag, flag, flag)
	case o.KMSAccessKey != "" && o.KMSSecretKey == "":
		return cfg, fmt.Errorf("--%skms-access-key needs --%skms-secret-key", flag, flag)
	case o.KMSAccessKey != "":
		cfg.Credentials = credentials.NewStaticCredentialsProvider(o.KMSAccessKey, o.KMSSecretKey, o.KMSSessionToken)
	}
	return cfg, nil
}

// KeyringOptions locate and unlock the embedded keyring (--kms local).
type KeyringOptions struct {
	DataDir       string `env:"DATA_DIR" default:"./s3seal-data" help:"Directory of the embedded keyring; serve also keeps the embedded store and generated client credentials there (${env})."`
	MasterKeyFile string `env:"MASTER_KEY_FILE" help:"Key file protecting the embedded keyring at rest; default <data-dir>/master.key (${env})."`
	Passphrase    string `env:"KEYRING_PASSPHRASE" help:"Passphrase protecting the embedded keyring instead of a key file; prefer the environment variable to the flag, which other users can see in the process list (${env})."`

	// The HSM that keyring keys created with --custom-key-store pkcs11
	// live in. The PIN has no flag (the process list shows flags): it
	// comes from S3SEAL_PKCS11_PIN or the PIN file.
	PKCS11Module     string `name:"pkcs11-module" env:"PKCS11_MODULE" help:"PKCS#11 module (the HSM vendor's .so) of the HSM that holds keyring keys created with --custom-key-store pkcs11; needs an s3seal built with cgo (${env})."`
	PKCS11TokenLabel string `name:"pkcs11-token-label" env:"PKCS11_TOKEN_LABEL" help:"Label of the HSM token (partition) that holds them (${env})."`
	PKCS11PINFile    string `name:"pkcs11-pin-file" env:"PKCS11_PIN_FILE" help:"File (0600 or 0400) holding the token's user PIN; or set S3SEAL_PKCS11_PIN. There is no PIN flag: the process list shows flags (${env})."`
}

// KeyOptions choose the KMS key that wraps new data keys: serve's for the
// objects it writes, migrate's for the destination's.
type KeyOptions struct {
	KMSKeyID   string `env:"KMS_KEY_ID" default:"alias/s3seal-default" help:"Default KMS key (id, ARN or alias) for buckets without a mapping. With the embedded keyring serve creates the default alias on first start (${env})."`
	BucketKeys string `env:"BUCKET_KEYS" help:"Per-bucket KMS keys, comma separated bucket=key pairs (${env})."`
}

// keyFor returns the key for new objects in bucket.
func (o *KeyOptions) keyFor(bucket string) (string, error) {
	m, err := parseBucketKeys(o.BucketKeys)
	if err != nil {
		return "", err
	}
	if k, ok := m[bucket]; ok {
		return k, nil
	}
	return o.KMSKeyID, nil
}
