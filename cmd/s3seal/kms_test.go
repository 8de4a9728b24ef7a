package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/awskms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/proxy"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "s3seal kms test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestKMSListener starts the KMS API as serve does, over TLS, and uses it
// as a proxy with S3SEAL_KMS=aws would; the single identity is its
// administrator by default.
func TestKMSListener(t *testing.T) {
	kr, err := keyring.Open(keyring.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	md, err := kr.CreateKey("listener")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	certFile, keyFile, pool := selfSigned(t)
	ids := proxy.NewStaticIdentities([]proxy.Identity{{AccessKey: "single", SecretKey: "single-secret", Buckets: []string{"*"}}}, nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	o := &KMSAPIOptions{KMSListen: addr, KMSTLSCert: certFile}
	if _, err := o.startKeyring(context.Background(), kr, ids, "single", nil, nil, log); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
	o.KMSTLSKey = keyFile
	stop, err := o.startKeyring(context.Background(), kr, ids, "single", nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	c, err := awskms.New(context.Background(), awskms.Config{
		Region: "us-east-1", Endpoint: "https://" + addr,
		Credentials: credentials.NewStaticCredentialsProvider("single", "single-secret", ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dk, err := c.GenerateDataKey(ctx, md.KeyID, kms.BucketContext("b"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := c.Decrypt(ctx, "", dk.Ciphertext, kms.BucketContext("b"))
	if err != nil || string(pt) != string(dk.Plaintext) {
		t.Fatalf("decrypt: %v", err)
	}
	// Plain HTTP to a TLS listener does not get through.
	resp, err := http.Get("http://" + addr + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served")
		}
	}
}
