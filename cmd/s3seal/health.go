package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// HealthCmd asks a running `s3seal serve` on this host whether it is up:
// the container's HEALTHCHECK, where the distroless image has no shell or
// curl. It reads the same S3SEAL_LISTEN and S3SEAL_TLS_CERT as serve, so
// that it finds the proxy with no options of its own.
type HealthCmd struct {
	Listen  string        `env:"S3SEAL_LISTEN" default:"127.0.0.1:8080" help:"The proxy's listen address; a wildcard host (0.0.0.0, ::) is probed on 127.0.0.1 (${env})."`
	TLSCert string        `env:"S3SEAL_TLS_CERT" help:"Set when the proxy serves HTTPS: the probe then uses https (${env})."`
	Ready   bool          `help:"Probe /readyz (the store answers and the KMS knows the default key) instead of /healthz (the proxy serves)."`
	Timeout time.Duration `default:"5s" help:"Time the probe may take."`
}

func (c *HealthCmd) Run() error {
	url, err := healthURL(c.Listen, c.TLSCert != "", c.Ready)
	if err != nil {
		return err
	}
	// A Transport of its own has no Proxy: the probe never goes through
	// HTTP(S)_PROXY. It only asks the local process whether it serves,
	// sends no credentials and trusts nothing it reads, and the proxy's
	// certificate names its public host, not the loopback address: the
	// certificate is not verified.
	client := &http.Client{Timeout: c.Timeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s: %s", url, resp.Status, body)
	}
	fmt.Printf("%s: %s", url, body)
	return nil
}

// healthURL is where the proxy listening on listen answers its health
// probe from this host.
func healthURL(listen string, https, ready bool) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("health: listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme, path := "http", "/healthz"
	if https {
		scheme = "https"
	}
	if ready {
		path = "/readyz"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + path, nil
}
