package main

import (
	"context"
	"crypto/fips140"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/embedstore"
	"github.com/s3seal/s3seal/internal/objstore"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/awskms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/kms/rsafile"
	"github.com/s3seal/s3seal/proxy"
)

// ServeCmd runs the proxy. Every option is also an environment variable.
type ServeCmd struct {
	Listen          string `env:"S3SEAL_LISTEN" default:"127.0.0.1:8080" help:"Address to listen on (${env})."`
	TLSCert         string `env:"S3SEAL_TLS_CERT" help:"PEM certificate (chain) to serve HTTPS with; re-read when it changes (${env})."`
	TLSKey          string `env:"S3SEAL_TLS_KEY" help:"PEM private key of the TLS certificate (${env})."`
	UpstreamOptions `embed:"" envprefix:"S3SEAL_"`
	Region          string `env:"S3SEAL_REGION" help:"Region clients sign for; defaults to the upstream region (${env})."`
	AccessKey       string `env:"S3SEAL_ACCESS_KEY" help:"Access key clients sign with. If it, the secret and a credentials file are all unset, a pair is generated on first start, stored in the data dir (0600) and printed once (${env})."`
	SecretKey       string `env:"S3SEAL_SECRET_KEY" help:"Secret key clients sign with (${env})."`
	CredentialsFile string `env:"S3SEAL_CREDENTIALS_FILE" help:"JSON file of client identities ({\"identities\":[{\"access_key\",\"secret_key\",\"buckets\":[\"*\"]}],\"anonymous_read_buckets\":[]}), re-read when it changes (${env})."`
	Domains         string `env:"S3SEAL_DOMAINS" help:"Base domains for virtual-hosted-style requests (bucket.domain), comma separated; path style always works (${env})."`
	// Named explicitly: kong would derive --allow-sig-v-2 from the field.
	KeepTrailerChecksums bool `env:"S3SEAL_KEEP_TRAILER_CHECKSUMS" default:"true" negatable:"" help:"Keep a PutObject's checksum sent in a trailer (the AWS SDKs' default over https) so that x-amz-checksum-mode returns it; it arrives after the object header went to the store, so keeping it costs a copy of the object onto itself at the store. Off, it is verified and not kept (${env})."`
	AllowDotSegments     bool `env:"S3SEAL_ALLOW_DOT_SEGMENTS" help:"Forward object keys with '.' or '..' path segments (a/../b) instead of refusing them with XMinioInvalidResourceName as MinIO does. S3 and the embedded store keep such keys literally; a store that maps keys to file paths may resolve them into another bucket, so turn this on only for a store known to keep keys literally (${env})."`
	AllowSigV2           bool `name:"allow-sigv2" env:"S3SEAL_ALLOW_SIGV2" default:"${allow_sigv2_default}" negatable:"" help:"Accept AWS Signature V2 (HMAC-SHA1) from clients. On by default (off, and not allowed, in FIPS 140-3 mode) because boto3's generate_presigned_url and 'aws s3 presign' (aws cli v1) make V2 URLs unless configured for s3v4, and S3 and MinIO accept them. V2 signs with HMAC-SHA1 (not broken as a MAC), but it signs no payload hash, no region and only some query parameters (s3seal refuses V2 URLs valid for more than 7 days and V2 requests with unsigned parameters that could change the operation); turn it off when every client signs V4 (${env})."`

	KMSOptions `embed:"" envprefix:"S3SEAL_"`
	KeyOptions `embed:"" envprefix:"S3SEAL_"`

	KMSAPIOptions `embed:"" envprefix:"S3SEAL_"`

	WriteOnlyKey        string `env:"S3SEAL_WRITE_ONLY_KEY" help:"RSA KMS key (RSA_3072 or RSA_4096, ENCRYPT_DECRYPT; id, ARN or alias) whose public half wraps the data keys of every bucket without a mapping of its own: this instance writes objects it cannot read back unless --rsa-decrypt is given (write-only backup ingestion). Needs a KMS that is not in this data dir (--kms aws, possibly at an 's3seal kms serve' elsewhere) (${env})."`
	WriteOnlyBucketKeys string `env:"S3SEAL_WRITE_ONLY_BUCKET_KEYS" help:"Per-bucket RSA keys as --write-only-key, comma separated bucket=key pairs; a bucket may not also be in --bucket-keys (${env})."`
	WriteOnlyKeyFile    string `env:"S3SEAL_WRITE_ONLY_KEY_FILE" help:"PEM RSA public key (3072 or 4096 bits, e.g. from 'openssl pkey -pubout') that wraps the data keys of every bucket without a mapping of its own, without a KMS: this instance writes what it cannot read. Instead of --write-only-key and --write-only-bucket-keys (${env})."`
	RSAPrivateKeyFile   string `name:"rsa-private-key-file" env:"S3SEAL_RSA_PRIVATE_KEY_FILE" help:"PEM RSA private key of --write-only-key-file's key: this instance reads (and, with --write-only-key-file, writes) objects wrapped with it, without a KMS (${env})."`
	RSADecrypt          bool   `name:"rsa-decrypt" env:"S3SEAL_RSA_DECRYPT" help:"This instance has KMS Decrypt rights on the RSA keys (AWS KMS Decrypt with RSAES_OAEP_SHA_256): it reads objects whose data keys they wrapped, as a restore ('read') instance. Off, such reads are answered 403 AccessDenied (${env})."`

	KeyringOptions          `embed:"" envprefix:"S3SEAL_"`
	AllowMasterKeyInDataDir bool `env:"S3SEAL_ALLOW_MASTER_KEY_IN_DATA_DIR" help:"Start even though the embedded keyring's master key file is inside the data dir it protects (anyone who copies the data dir can then decrypt everything). By default the key file is made outside it, in the user's configuration directory (${env})."`

	DeletionScan string `env:"S3SEAL_DELETION_SCAN" placeholder:"s3://bucket[/prefix],..." help:"Embedded keyring: before deleting a key whose waiting period has ended, scan these buckets (comma separated, as keys usage does; the report is kept in the data dir) and hold the key if objects are under it. Without it the last kept report decides (${env})."`

	CacheMaxAge  time.Duration `env:"S3SEAL_DEK_CACHE_MAX_AGE" default:"5m" help:"How long a data key is reused for new objects (${env})."`
	CacheMaxUses int           `env:"S3SEAL_DEK_CACHE_MAX_USES" default:"1000" help:"How many objects one data key encrypts; 0 disables reuse (${env})."`
	AuditLog     string        `env:"S3SEAL_AUDIT_LOG" help:"Write a CloudTrail-shaped JSON line per KMS call to this file, or '-' for stdout (${env})."`
	KMSPrice     float64       `name:"kms-price-per-10k" env:"S3SEAL_KMS_PRICE_PER_10K" default:"0.03" help:"Price in dollars of 10,000 KMS requests, for the estimated KMS cost per million objects in the metrics; AWS KMS's published price for symmetric keys by default (${env})."`

	LimitOptions `embed:"" envprefix:"S3SEAL_"`
	PostSpoolMiB int64 `name:"post-spool-mib" env:"S3SEAL_POST_SPOOL_MIB" default:"8192" help:"MiB that browser form (POST) uploads may hold at once in temporary files (TMPDIR; encrypted under per-upload keys) while their length is learnt; a form over it is answered 503 SlowDown. 0: no bound (${env})."`

	CompressOptions `embed:"" envprefix:"S3SEAL_"`

	LogLevel string `env:"S3SEAL_LOG_LEVEL" enum:"debug,info,warn,error" default:"info" help:"Log level (${env})."`

	Metrics       bool   `env:"S3SEAL_METRICS" default:"true" negatable:"" help:"Serve Prometheus metrics at GET /metrics to unsigned requests, without authentication; no bucket, object or key names appear in them. On the S3 listener unless --metrics-listen is set; turn off (or use --metrics-listen) on a public listener (${env})."`
	MetricsListen string `env:"S3SEAL_METRICS_LISTEN" help:"Serve the metrics (GET /metrics, unauthenticated) on this address of their own (e.g. 127.0.0.1:9100) and not on the S3 listener (${env})."`
	Pprof         string `env:"S3SEAL_PPROF" help:"Serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060); off if unset (${env})."`

	ShutdownTimeout time.Duration `env:"S3SEAL_SHUTDOWN_TIMEOUT" default:"30s" help:"On SIGTERM or SIGINT, stop accepting and give requests in flight this long to finish; those still open then are cut off, and an upload cut off is not stored (${env})."`
}

func (c *ServeCmd) Run() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := fipsAllowSigV2(c.AllowSigV2); err != nil {
		return err
	}
	if fips140.Enabled() {
		log.Info("FIPS 140-3 mode", "fips140", fipsModeName(), "module", fips140.Version(), "gofips140", buildSetting("GOFIPS140"))
	}
	identities, err := c.identities(log)
	if err != nil {
		return err
	}

	if c.MetricsListen != "" && !c.Metrics {
		return errors.New("--metrics-listen serves the metrics: it contradicts --no-metrics")
	}

	// cutOff ends the embedded store's requests still open when the
	// shutdown deadline passes (an external store sees its connections
	// close when the process exits).
	cutOffCtx, cutOff := context.WithCancel(context.Background())
	defer cutOff()
	upURL, upAccess, upSecret := c.Upstream, c.UpstreamAccessKey, c.UpstreamSecretKey
	var upDial func(string) (net.Conn, error)
	var scan usageScan
	scanTargets, err := parseTargets(splitList(c.DeletionScan))
	if err != nil {
		return fmt.Errorf("--deletion-scan: %w", err)
	}
	if len(scanTargets) > 0 && c.KMS != "local" {
		return errors.New("--deletion-scan guards the embedded keyring's deletions: it needs --kms local")
	}
	if len(scanTargets) > 0 && upURL != "" {
		st, err := c.UpstreamOptions.store()
		if err != nil {
			return err
		}
		scan = newUsageScan(st, scanTargets, c.DataDir)
	}
	if upURL == "" {
		dir := filepath.Join(c.DataDir, "store")
		store, err := embedstore.Open(dir, embedstore.Options{Logger: log})
		if err != nil {
			return err
		}
		defer store.Close()
		// In-process: the store has no port of its own.
		inproc := store.Serve()
		defer inproc.Close(cutOffCtx)
		upURL, upAccess, upSecret, upDial = embedstore.URL, "embedded", "embedded", inproc.Dial
		if len(scanTargets) > 0 {
			scan = newUsageScan(objstore.New(objstore.Config{Endpoint: embedstore.URL, Region: c.UpstreamRegion,
				AccessKey: "embedded", SecretKey: "embedded", HTTPClient: inproc.HTTPClient()}), scanTargets, c.DataDir)
		}
		log.Info("using the embedded store", "dir", dir)
	}

	backend, err := c.kmsBackend(ctx, log)
	if err != nil {
		return err
	}
	// Stacked bottom up: the meter counts and the audit log sees every
	// call the KMS receives (each retry too), retries sit above them, and
	// the cache on top keeps most requests from reaching the KMS at all.
	client := kms.Client(kms.NewMeter(backend))
	var auditLog *kms.AuditLog // shared with the KMS API
	if c.AuditLog != "" {
		w := os.Stdout
		if c.AuditLog != "-" {
			f, err := os.OpenFile(c.AuditLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("audit log: %w", err)
			}
			defer f.Close()
			w = f
		}
		auditLog = kms.NewAuditLog(w)
		client = kms.NewAuditTo(client, auditLog, nil)
	}
	client = kms.NewRetry(client, kms.RetryConfig{})
	cacheCfg := kms.DefaultCacheConfig()
	cacheCfg.MaxAge, cacheCfg.MaxUses = c.CacheMaxAge, c.CacheMaxUses
	asym, err := c.asymmetricKeys(client, cacheCfg)
	if err != nil {
		return err
	}
	if ac, ok := asym.KMS.(*kms.Cache); ok {
		flushOnHangup(ctx, ac, log)
	}
	cache := kms.NewCache(client, cacheCfg)
	client = cache
	flushOnHangup(ctx, cache, log)
	if c.KMS == "local" {
		flushOnKeyringChange(ctx, filepath.Join(c.DataDir, keyring.FileName), 2*time.Second, cache, log)
	}
	if kr, ok := backend.(*keyring.Keyring); ok {
		stopKMS, err := c.startKeyring(ctx, kr, identities, singleIdentity(c), auditLog, scan, log)
		if err != nil {
			return err
		}
		defer stopKMS()
	} else if c.KMSListen != "" {
		return errors.New("--kms-listen serves the embedded keyring: it needs --kms local")
	}
	if c.Pprof != "" {
		stopPprof, err := startPprof(c.Pprof, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	bucketKeys, err := parseBucketKeys(c.BucketKeys)
	if err != nil {
		return err
	}
	listenTLS, err := serverTLS(c.TLSCert, c.TLSKey, log)
	if err != nil {
		return err
	}
	upTLS, err := upstreamTLS(c.UpstreamCAFile)
	if err != nil {
		return err
	}
	compression, err := c.CompressOptions.config()
	if err != nil {
		return err
	}
	srv, err := proxy.New(proxy.Config{
		UpstreamURL: upURL, UpstreamRegion: c.UpstreamRegion,
		UpstreamAccessKey: upAccess, UpstreamSecretKey: upSecret,
		Region:     c.Region,
		Identities: identities, Domains: splitList(c.Domains),
		KMS: client, DefaultKeyID: c.KMSKeyID, BucketKeys: bucketKeys, Asymmetric: asym,
		Metrics: c.Metrics && c.MetricsListen == "", KMSPricePer10K: c.KMSPrice, AllowSigV2: c.AllowSigV2,
		AllowDotSegments: c.AllowDotSegments, DropTrailerChecksums: !c.KeepTrailerChecksums, UpstreamDial: upDial, UpstreamTLS: upTLS,
		HeaderTimeout: c.HeaderTimeout, BodyTimeout: c.BodyTimeout, KeepAliveAfter: c.KeepAliveAfter,
		MaxConcurrentRequests: c.MaxRequests, MaxRequestsPerIdentity: c.MaxRequestsPerIdentity,
		UpstreamMaxConns: c.UpstreamMaxConns, UpstreamConnWait: c.UpstreamConnWait,
		PostSpoolBytes: spoolBytes(c.PostSpoolMiB),
		Compression:    compression,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if listenTLS != nil {
		ln, scheme = tls.NewListener(ln, listenTLS), "https"
	} else if !loopbackOnly(c.Listen) {
		log.Warn("INSECURE: listening on a non-loopback address without TLS: signatures protect requests from tampering, "+
			"but object data, keys and metadata cross the network in the clear. Set S3SEAL_TLS_CERT and S3SEAL_TLS_KEY, "+
			"or put a TLS-terminating proxy in front on the same host", "addr", c.Listen)
	}
	if c.MetricsListen != "" {
		// Stopped last (deferred): metrics stay scrapable while requests
		// drain.
		stopMetrics, err := startMetrics(c.MetricsListen, srv.MetricsHandler(), log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopMetrics()
	}
	log.Info("s3seal listening", "addr", ln.Addr().String(), "scheme", scheme, "upstream", upURL, "kms", c.KMS, "key", c.KMSKeyID)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return c.shutdown(srv, cutOff, log)
}

// shutdown stops accepting connections and lets the requests in flight
// finish within ShutdownTimeout. Those still open then are cut off: the
// embedded store's requests are ended at once (cutOff) and the caller
// exits, which closes every connection, the store's included. A single
// PUT cut off leaves no object, as the store never completes a PUT whose
// body ends short of its Content-Length; a multipart upload is completed
// by its Complete request alone, which is itself all or nothing.
func (c *ServeCmd) shutdown(srv *proxy.Server, cutOff func(), log *slog.Logger) error {
	log.Info("shutting down: no new connections; waiting for requests in flight", "deadline", c.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		cutOff()
		log.Warn("shutdown deadline passed: cutting off the requests still in flight (their uploads are not stored)", "deadline", c.ShutdownTimeout)
		return fmt.Errorf("shutdown: requests still in flight after %s were cut off", c.ShutdownTimeout)
	}
	if err == nil {
		log.Info("shut down: every request in flight finished")
	}
	return err
}

func (c *ServeCmd) kmsBackend(ctx context.Context, log *slog.Logger) (kms.Client, error) {
	krCfg, mk, err := c.keyringConfig()
	if c.DeletionScan != "" {
		krCfg.DeletionGuard = scannedGuard(c.DataDir)
	}
	if c.KMS == "local" {
		if err != nil {
			return nil, err
		}
		if err := c.checkMasterKey(mk, log); err != nil {
			return nil, err
		}
	}
	backend, err := openKMS(ctx, c.KMSOptions, "", krCfg)
	if err != nil {
		return nil, err
	}
	if kr, ok := backend.(*keyring.Keyring); ok {
		if krCfg.KeyStore != nil {
			checkKeyStore(ctx, krCfg.KeyStore, log)
		}
		if kr.Created() && kr.MasterKeyFile() != "" {
			log.Warn("created the embedded keyring's master key; back it up apart from the data dir: without it no object can be decrypted",
				"master_key_file", kr.MasterKeyFile(), "data_dir", c.DataDir)
		}
		if err := ensureDefaultKey(ctx, kr, c.KMSKeyID, log); err != nil {
			return nil, err
		}
	}
	return backend, nil
}

// checkMasterKey refuses a master key file inside the data dir it protects,
// unless accepted, and warns loudly of the one earlier versions made there.
func (c *ServeCmd) checkMasterKey(mk masterKey, log *slog.Logger) error {
	if !mk.inDataDir {
		return mk.ensureDir()
	}
	if !mk.legacy && !c.AllowMasterKeyInDataDir {
		return errMasterKeyInDataDir(mk.path, c.DataDir)
	}
	attrs := []any{"master_key_file", mk.path, "data_dir", c.DataDir}
	if mk.moveTo != "" {
		attrs = append(attrs, "move_to", mk.moveTo)
	}
	log.Warn("INSECURE: the master key file is inside the data dir it protects; whoever copies the data dir can decrypt every object. "+
		"Stop s3seal, move the file out of the data dir (to move_to, or anywhere with S3SEAL_MASTER_KEY_FILE set to its new path) and back it up apart (README: Keeping the master key apart)",
		attrs...)
	return mk.ensureDir()
}

// openKMS opens the KMS backend: "aws" (AWS KMS or a compatible endpoint)
// or the embedded keyring. flag is the prefix of o's flags ("src-", "dst-"
// or ""), for errors.
func openKMS(ctx context.Context, o KMSOptions, flag string, local keyring.Config) (kms.Client, error) {
	if o.KMS == "aws" {
		cfg, err := o.awsConfig(flag)
		if err != nil {
			return nil, err
		}
		return awskms.New(ctx, cfg)
	}
	kr, err := keyring.Open(local)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return kr, nil
}

// ensureDefaultKey creates the default alias's key on first start, so the
// embedded defaults work with no set-up.
func ensureDefaultKey(ctx context.Context, kr *keyring.Keyring, keyID string, log *slog.Logger) error {
	_, err := kr.DescribeKey(ctx, keyID)
	if err == nil || kms.ErrorCode(err) != kms.CodeNotFound || !strings.HasPrefix(keyID, "alias/") {
		return err
	}
	md, err := kr.CreateKey("s3seal default key")
	if err != nil {
		return err
	}
	if err := kr.CreateAlias(keyID, md.KeyID); err != nil {
		return err
	}
	log.Info("created the default key in the embedded keyring", "key", md.KeyID, "alias", keyID)
	return nil
}

func parseBucketKeys(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		b, k, ok := strings.Cut(pair, "=")
		if !ok || b == "" || k == "" {
			return nil, fmt.Errorf("bucket keys: %q is not bucket=key", pair)
		}
		m[b] = k
	}
	return m, nil
}

// identities builds the client identities: a credentials file if given,
// else the single configured or generated pair, allowed every bucket.
func (c *ServeCmd) identities(log *slog.Logger) (proxy.Identities, error) {
	if c.CredentialsFile != "" {
		if c.AccessKey != "" || c.SecretKey != "" {
			return nil, errors.New("use either a credentials file or S3SEAL_ACCESS_KEY/S3SEAL_SECRET_KEY, not both")
		}
		return proxy.LoadIdentities(c.CredentialsFile, log)
	}
	access, secret, err := c.clientCredentials()
	if err != nil {
		return nil, err
	}
	return proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: access, SecretKey: secret, Buckets: []string{"*"}, Permissions: proxy.AllPermissions}}, nil), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type storedCredentials struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

// clientCredentials returns the configured client credentials, or loads
// (or on first start generates and prints once) a pair in the data dir.
func (c *ServeCmd) clientCredentials() (string, string, error) {
	if c.AccessKey != "" || c.SecretKey != "" {
		if c.AccessKey == "" || c.SecretKey == "" {
			return "", "", errors.New("set both S3SEAL_ACCESS_KEY and S3SEAL_SECRET_KEY, or neither")
		}
		return c.AccessKey, c.SecretKey, nil
	}
	path := filepath.Join(c.DataDir, "credentials.json")
	b, err := os.ReadFile(path)
	if err == nil {
		var sc storedCredentials
		if err := json.Unmarshal(b, &sc); err != nil || sc.AccessKey == "" || sc.SecretKey == "" {
			return "", "", fmt.Errorf("%s: not valid credentials", path)
		}
		return sc.AccessKey, sc.SecretKey, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	sc := storedCredentials{AccessKey: "S3SEAL" + randomString(14, upperAlnum), SecretKey: randomString(40, secretAlphabet)}
	b, _ = json.MarshalIndent(sc, "", "  ")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", "", err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	fmt.Printf("Generated client credentials (stored in %s, shown only once):\n  AWS_ACCESS_KEY_ID=%s\n  AWS_SECRET_ACCESS_KEY=%s\n",
		path, sc.AccessKey, sc.SecretKey)
	return sc.AccessKey, sc.SecretKey, nil
}

const (
	upperAlnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// randomString draws n characters uniformly from an alphabet whose size
// divides 256, so that no character is more likely than another.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// spoolBytes converts --post-spool-mib to proxy.Config.PostSpoolBytes:
// 0 (like --max-requests 0) means no bound, which the proxy spells -1.
func spoolBytes(mib int64) int64 {
	if mib <= 0 {
		return -1
	}
	return mib << 20
}

// CompressOptions turn on compression before encryption (issue #22; README
// "Compression"), globally or per bucket.
type CompressOptions struct {
	Compress          string  `env:"COMPRESS" enum:"off,s2,zstd" default:"off" help:"Compress new objects (single PUTs, and multipart uploads part by part) before encrypting them, in every bucket without its own setting: 'off', 's2' (fast) or 'zstd' (smaller). Do not turn it on where content an attacker can partly choose is stored together with secrets: sizes then leak (README, Compression) (${env})."`
	CompressBuckets   string  `env:"COMPRESS_BUCKETS" help:"Per-bucket compression, comma separated bucket=off|s2|zstd pairs, overriding --compress; a level may follow the algorithm (logs=zstd:better), overriding --compress-level (${env})."`
	CompressLevel     string  `env:"COMPRESS_LEVEL" default:"default" help:"How hard to compress: s2 'default', 'better' or 'best'; zstd 'fastest', 'default', 'better' or 'best'. Slower levels store less (README, Compression, has measured figures); objects written at any level read alike, so it can be changed at any time (${env})."`
	CompressSkip      string  `env:"COMPRESS_SKIP" help:"File extensions (zip, .jpg) and content types (image/png, video/*) stored uncompressed because they are compressed already, comma separated; replaces the built-in list (zip, gz, tgz, zst, xz, bz2, 7z, jpg, png, mp4, mkv, mp3, pdf, ...). 'none': skip nothing by name (${env})."`
	CompressMinSaving float64 `env:"COMPRESS_MIN_SAVING" default:"0.10" help:"Adaptive check: an object whose first block compresses by less than this fraction is stored uncompressed (${env})."`
	CompressBlockKiB  int     `name:"compress-block-kib" env:"COMPRESS_BLOCK_KIB" default:"256" help:"Compression block size in KiB (64 to 4096, a power of two): a range read decompresses whole blocks (${env})."`
	CompressSpoolMiB  int64   `name:"compress-spool-mib" env:"COMPRESS_SPOOL_MIB" default:"8192" help:"MiB that compressed PUTs may hold at once in temporary files (TMPDIR; ciphertext, encrypted once more) while their stored length is learnt; a PUT over it is answered 503 SlowDown. 0: no bound (${env})."`
}

// config builds proxy.Compression from the options.
func (o *CompressOptions) config() (proxy.Compression, error) {
	alg := func(s string) (envelope.Algorithm, error) {
		switch s {
		case "off", "":
			return "", nil
		case "s2":
			return envelope.AlgS2, nil
		case "zstd":
			return envelope.AlgZstd, nil
		}
		return "", fmt.Errorf("compression algorithm %q (want off, s2 or zstd)", s)
	}
	c := proxy.Compression{MinSaving: o.CompressMinSaving, BlockSize: o.CompressBlockKiB << 10, SpoolBytes: spoolBytes(o.CompressSpoolMiB),
		SkipExtensions: proxy.DefaultSkipExtensions, SkipContentTypes: proxy.DefaultSkipContentTypes}
	var err error
	if c.Algorithm, err = alg(strings.ToLower(strings.TrimSpace(o.Compress))); err != nil {
		return c, err
	}
	c.Level = envelope.Level(strings.ToLower(strings.TrimSpace(o.CompressLevel)))
	if c.Algorithm != "" {
		if err := envelope.CheckLevel(c.Algorithm, c.Level); err != nil {
			return c, fmt.Errorf("--compress-level: %w", err)
		}
	} else if err := envelope.CheckLevel(envelope.AlgZstd, c.Level); err != nil {
		// zstd has every level there is.
		return c, fmt.Errorf("--compress-level: %w", err)
	}
	pairs, err := parseBucketKeys(o.CompressBuckets)
	if err != nil {
		return c, fmt.Errorf("--compress-buckets: %w", err)
	}
	if len(pairs) > 0 {
		c.Buckets = map[string]envelope.Algorithm{}
	}
	for b, v := range pairs {
		// bucket=alg or bucket=alg:level.
		a, l, hasLevel := strings.Cut(strings.ToLower(strings.TrimSpace(v)), ":")
		if c.Buckets[b], err = alg(a); err != nil {
			return c, fmt.Errorf("--compress-buckets %s: %w", b, err)
		}
		level := c.Level
		if hasLevel {
			if c.Buckets[b] == "" {
				return c, fmt.Errorf("--compress-buckets %s: a level for a bucket without compression", b)
			}
			if c.BucketLevels == nil {
				c.BucketLevels = map[string]envelope.Level{}
			}
			level = envelope.Level(l)
			c.BucketLevels[b] = level
		}
		if c.Buckets[b] == "" {
			continue
		}
		if err := envelope.CheckLevel(c.Buckets[b], level); err != nil {
			if !hasLevel {
				return c, fmt.Errorf("--compress-buckets %s: --compress-level: %w; give the bucket its own level (%s=%s:default)", b, err, b, c.Buckets[b])
			}
			return c, fmt.Errorf("--compress-buckets %s: %w", b, err)
		}
	}
	if o.CompressSkip != "" {
		c.SkipExtensions, c.SkipContentTypes = nil, nil
		if strings.TrimSpace(o.CompressSkip) != "none" {
			for _, item := range splitList(o.CompressSkip) {
				if strings.Contains(item, "/") {
					c.SkipContentTypes = append(c.SkipContentTypes, strings.ToLower(item))
				} else {
					c.SkipExtensions = append(c.SkipExtensions, strings.ToLower(strings.TrimPrefix(item, ".")))
				}
			}
		}
	}
	return c, nil
}

// asymmetricKeys builds the write-only keys' KMS stack: a data-key cache
// (one RSA wrap per cached data key) over kms.Asymmetric over the same
// retry, audit and meter layers as the symmetric keys, so that every
// GetPublicKey and RSA Decrypt is retried, audited and counted. Without
// --rsa-decrypt the cache keeps no unwrapped keys and Asymmetric refuses
// every Decrypt: the instance cannot read what it wrote.
func (c *ServeCmd) asymmetricKeys(below kms.Client, cacheCfg kms.CacheConfig) (proxy.AsymmetricKeys, error) {
	bucketKeys, err := parseBucketKeys(c.WriteOnlyBucketKeys)
	if err != nil {
		return proxy.AsymmetricKeys{}, fmt.Errorf("--write-only-bucket-keys: %w", err)
	}
	if c.WriteOnlyKeyFile != "" || c.RSAPrivateKeyFile != "" {
		return c.fileKeys(bucketKeys, cacheCfg)
	}
	if c.WriteOnlyKey == "" && len(bucketKeys) == 0 && !c.RSADecrypt {
		return proxy.AsymmetricKeys{}, nil
	}
	if c.KMS == "local" && !c.RSADecrypt && (c.WriteOnlyKey != "" || len(bucketKeys) > 0) {
		// The embedded keyring in the data dir holds the private keys: an
		// instance that has them is not write-only.
		return proxy.AsymmetricKeys{}, errors.New("--write-only-key with --kms local: the embedded keyring in this data dir holds the RSA private key, so this instance would not be write-only; keep the keyring elsewhere ('s3seal kms serve') and use --kms aws --kms-endpoint, or give --rsa-decrypt for an instance that may read")
	}
	a, err := kms.NewAsymmetric(below, kms.AsymmetricConfig{Decrypt: c.RSADecrypt})
	if err != nil {
		return proxy.AsymmetricKeys{}, err
	}
	if !c.RSADecrypt {
		cacheCfg.DecryptMaxEntries = 0
	}
	return proxy.AsymmetricKeys{KMS: kms.NewCache(a, cacheCfg), DefaultKeyID: c.WriteOnlyKey, BucketKeys: bucketKeys, Decrypt: c.RSADecrypt}, nil
}

// fileKeys builds the RSA keys' stack over a key in PEM files instead of
// the KMS: the public key file to write with, the private key file to
// read (and to write, if the public one is not given). Objects name the
// key by its fingerprint (rsafile.KeyIDPrefix).
func (c *ServeCmd) fileKeys(bucketKeys map[string]string, cacheCfg kms.CacheConfig) (proxy.AsymmetricKeys, error) {
	if c.WriteOnlyKey != "" || len(bucketKeys) > 0 {
		return proxy.AsymmetricKeys{}, errors.New("--write-only-key-file and --rsa-private-key-file replace the KMS for RSA keys: give them or --write-only-key / --write-only-bucket-keys, not both")
	}
	var (
		key *rsafile.Key
		err error
	)
	if c.RSAPrivateKeyFile != "" {
		if key, err = rsafile.LoadPrivate(c.RSAPrivateKeyFile); err != nil {
			return proxy.AsymmetricKeys{}, err
		}
	}
	if c.WriteOnlyKeyFile != "" {
		pub, err := rsafile.LoadPublic(c.WriteOnlyKeyFile)
		if err != nil {
			return proxy.AsymmetricKeys{}, err
		}
		if key != nil && key.ID() != pub.ID() {
			return proxy.AsymmetricKeys{}, errors.New("--write-only-key-file and --rsa-private-key-file are not one key pair")
		}
		if key == nil {
			key = pub
		}
	}
	decrypt := c.RSAPrivateKeyFile != ""
	a, err := kms.NewAsymmetric(key, kms.AsymmetricConfig{Decrypt: decrypt})
	if err != nil {
		return proxy.AsymmetricKeys{}, err
	}
	if !decrypt {
		cacheCfg.DecryptMaxEntries = 0
	}
	out := proxy.AsymmetricKeys{KMS: kms.NewCache(a, cacheCfg), Decrypt: decrypt}
	if c.WriteOnlyKeyFile != "" {
		out.DefaultKeyID = key.ID()
	}
	return out, nil
}
