package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/kmsapi"
	"github.com/s3seal/s3seal/proxy"
)

// KMSAPIOptions serve the embedded keyring over the AWS KMS API
// (kmsapi), to the identities the S3 listener knows.
type KMSAPIOptions struct {
	KMSListen  string `env:"KMS_LISTEN" help:"Serve the embedded keyring over the AWS KMS API on this address (e.g. 127.0.0.1:8081), so that the aws CLI, the AWS SDKs and other s3seal proxies (--kms aws --kms-endpoint http://ADDR) use its keys, authenticated as the identities the S3 listener knows. serve: off unless set, and only with --kms local; kms serve: default 127.0.0.1:8081 (${env})."`
	KMSTLSCert string `name:"kms-tls-cert" env:"KMS_TLS_CERT" help:"PEM certificate (chain) for the KMS API listener: with --kms-tls-key it serves HTTPS. GenerateDataKey and Decrypt answers carry plaintext data keys, so anything but a loopback listener needs TLS, here or in front (${env})."`
	KMSTLSKey  string `name:"kms-tls-key" env:"KMS_TLS_KEY" help:"PEM private key of --kms-tls-cert (${env})."`
	KMSAdmins  string `env:"KMS_ADMINS" help:"Access keys of the KMS API's administrators, comma separated: the account root (arn:aws:iam::000000000000:root) in key policies, who may create and list keys and, under the default key policy, do everything. Default: the one identity of --access-key (or the generated one); with a credentials file, nobody unless listed (${env})."`
}

// kmsIdentities are the S3 listener's identities as the KMS API sees
// them.
type kmsIdentities struct {
	ids    proxy.Identities
	admins map[string]bool
}

func (k *kmsIdentities) Lookup(ak string) (string, bool) {
	id, ok := k.ids.Lookup(ak)
	if !ok {
		return "", false
	}
	return id.SecretKey, true
}

func (k *kmsIdentities) Admin(ak string) bool { return k.admins[ak] }

// startKeyring runs what a process that owns the embedded keyring runs
// beside its main listener: automatic key rotation, the deletion of keys
// whose waiting period has ended (runDeletion) and, with
// --kms-listen, the KMS API. single is the access key of the one
// configured identity ("" with a credentials file), the default
// administrator. The returned stop ends both.
//
// scan, if not nil, counts the objects under each key at the store before
// runDeletion decides on keys due for deletion (serve --deletion-scan).
func (o *KMSAPIOptions) startKeyring(ctx context.Context, kr *keyring.Keyring, ids proxy.Identities, single string, audit *kms.AuditLog, scan usageScan, log *slog.Logger) (stop func(), err error) {
	rctx, cancel := context.WithCancel(ctx)
	rotated := make(chan struct{})
	go func() {
		defer close(rotated)
		kmsapi.RunRotation(rctx, kr, time.Minute, log)
	}()
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		runDeletion(rctx, kr, time.Minute, scan, log)
	}()
	stopRotation := func() { cancel(); <-rotated; <-swept }
	if o.KMSListen == "" {
		return stopRotation, nil
	}
	if (o.KMSTLSCert == "") != (o.KMSTLSKey == "") {
		stopRotation()
		return nil, errors.New("KMS API: give both --kms-tls-cert and --kms-tls-key, or neither")
	}
	admins := map[string]bool{}
	for _, ak := range splitList(o.KMSAdmins) {
		admins[ak] = true
	}
	if len(admins) == 0 && single != "" {
		admins[single] = true
	}
	if len(admins) == 0 {
		log.Warn("KMS API: no administrators (--kms-admins): only identities that key policies or grants name may use it, and nobody may create keys")
	}
	srv, err := kmsapi.New(kmsapi.Config{Keyring: kr, Identities: &kmsIdentities{ids: ids, admins: admins}, Audit: audit, Logger: log})
	if err != nil {
		stopRotation()
		return nil, err
	}
	ln, err := net.Listen("tcp", o.KMSListen)
	if err != nil {
		stopRotation()
		return nil, fmt.Errorf("KMS API: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	tlsOn := o.KMSTLSCert != ""
	if tlsOn {
		// Load now, so that a bad certificate fails the start.
		cert, err := tls.LoadX509KeyPair(o.KMSTLSCert, o.KMSTLSKey)
		if err != nil {
			ln.Close()
			stopRotation()
			return nil, fmt.Errorf("KMS API: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	} else if host, _, _ := net.SplitHostPort(o.KMSListen); !isLoopback(host) {
		log.Warn("KMS API listens without TLS on a non-loopback address: data keys cross the network in clear (set --kms-tls-cert and --kms-tls-key, or terminate TLS in front)", "addr", o.KMSListen)
	}
	go func() {
		var err error
		if tlsOn {
			err = hs.ServeTLS(ln, "", "")
		} else {
			err = hs.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("KMS API listener failed", "err", err)
		}
	}()
	log.Info("KMS API listening", "addr", ln.Addr().String(), "tls", tlsOn, "admins", len(admins))
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		stopRotation()
	}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// openAuditLog opens the audit log a command writes: a file (appended,
// 0600), or stdout for "-"; nil for "". Call closeLog when done.
func openAuditLog(path string) (log *kms.AuditLog, closeLog func(), err error) {
	switch path {
	case "":
		return nil, func() {}, nil
	case "-":
		return kms.NewAuditLog(os.Stdout), func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	return kms.NewAuditLog(f), func() { f.Close() }, nil
}

// KMSCmd groups the KMS commands.
type KMSCmd struct {
	Serve KMSServeCmd `cmd:"" help:"Serve the embedded keyring over the AWS KMS API alone, without an S3 listener: a key server other s3seal proxies (--kms aws --kms-endpoint) and AWS tools share."`
}

// KMSServeCmd runs the KMS API alone. Its identity options are serve's
// (same flags, same variables): one credentials file can serve both.
type KMSServeCmd struct {
	KMSAPIOptions   `embed:"" envprefix:"S3SEAL_"`
	KeyringOptions  `embed:"" envprefix:"S3SEAL_"`
	AccessKey       string `env:"S3SEAL_ACCESS_KEY" help:"Access key clients sign with. If it, the secret and a credentials file are all unset, a pair is generated on first start, stored in the data dir (0600) and printed once (${env})."`
	SecretKey       string `env:"S3SEAL_SECRET_KEY" help:"Secret key clients sign with (${env})."`
	CredentialsFile string `env:"S3SEAL_CREDENTIALS_FILE" help:"JSON file of client identities, as for serve, re-read when it changes (${env})."`
	AuditLog        string `env:"S3SEAL_AUDIT_LOG" help:"Write a CloudTrail-shaped JSON line per KMS API call to this file, or '-' for stdout (${env})."`
	LogLevel        string `env:"S3SEAL_LOG_LEVEL" enum:"debug,info,warn,error" default:"info" help:"Log level (${env})."`
}

// Run serves until SIGINT or SIGTERM.
func (c *KMSServeCmd) Run() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if c.KMSListen == "" {
		c.KMSListen = "127.0.0.1:8081"
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The identities are serve's, built the same way.
	sc := &ServeCmd{AccessKey: c.AccessKey, SecretKey: c.SecretKey, CredentialsFile: c.CredentialsFile, KeyringOptions: c.KeyringOptions}
	ids, err := sc.identities(log)
	if err != nil {
		return err
	}
	krCfg, mk, err := c.keyringConfig()
	if err != nil {
		return err
	}
	if err := mk.ensureDir(); err != nil {
		return err
	}
	kr, err := keyring.Open(krCfg)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	defer kr.Close()
	if krCfg.KeyStore != nil {
		checkKeyStore(ctx, krCfg.KeyStore, log)
	}
	audit, closeAudit, err := openAuditLog(c.AuditLog)
	if err != nil {
		return err
	}
	defer closeAudit()
	stopKMS, err := c.startKeyring(ctx, kr, ids, singleIdentity(sc), audit, nil, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	stopKMS()
	return nil
}

// singleIdentity is the access key of serve's one identity, or "" with a
// credentials file.
func singleIdentity(c *ServeCmd) string {
	if c.CredentialsFile != "" {
		return ""
	}
	ak, _, err := c.clientCredentials()
	if err != nil {
		return ""
	}
	return ak
}
