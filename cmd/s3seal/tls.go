package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// TLS on the listener, with the certificate re-read when its files change
// (a renewal by certbot or cert-manager needs no restart), and the trust
// store for an https upstream.

// certReloader serves the certificate of a cert/key file pair, re-read
// when either file changes (checked at most once a second, on a
// handshake). A pair that fails to load is logged, and the previous
// certificate stays in use.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // the files' modification times and sizes
	checked time.Time
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) fileStamp() (string, error) {
	s := ""
	for _, f := range []string{c.certFile, c.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%d/%d;", st.ModTime().UnixNano(), st.Size())
	}
	return s, nil
}

// reload loads the pair if it changed (lock held or not yet shared).
func (c *certReloader) reload() error {
	stamp, err := c.fileStamp()
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	if c.cert != nil && stamp == c.stamp {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	if c.cert != nil {
		c.log.Info("TLS certificate reloaded", "cert", c.certFile)
	}
	c.cert, c.stamp = &cert, stamp
	return nil
}

func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.checked) >= time.Second {
		c.checked = now
		if err := c.reload(); err != nil {
			c.log.Error("TLS certificate not reloaded; keeping the previous one", "err", err)
		}
	}
	return c.cert, nil
}

// serverTLS is the listener's TLS configuration: TLS 1.2 and later.
func serverTLS(certFile, keyFile string, log *slog.Logger) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("set both S3SEAL_TLS_CERT and S3SEAL_TLS_KEY, or neither")
	}
	if certFile == "" {
		return nil, nil
	}
	r, err := newCertReloader(certFile, keyFile, log)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}, nil
}

// upstreamTLS is the store client's TLS configuration: the system's roots,
// or those of caFile (PEM) instead; always verified.
func upstreamTLS(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("upstream CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("upstream CA file %s: no PEM certificate in it", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// loopbackOnly reports whether a listen address accepts loopback
// connections only.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
