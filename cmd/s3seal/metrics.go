package main

// Operational hooks of `s3seal serve`: pprof, the metrics listener, and
// the ways a key state change reaches the data-key cache of a running
// proxy (SIGHUP, and for the embedded keyring a watch on its file).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/s3seal/s3seal/kms"
)

// startPprof serves net/http/pprof on addr, which must be a loopback
// address: profiles show memory contents and are never for the network.
// It returns a function that stops the listener.
func startPprof(addr string, log *slog.Logger) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("pprof address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("pprof address %q: must be a loopback address such as 127.0.0.1:6060", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server stopped", "err", err)
		}
	}()
	log.Info("pprof listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// flushOnHangup drops every cached data key when the process gets SIGHUP,
// so that a key disabled or scheduled for deletion stops working at once
// instead of after the cache's max age. It returns when ctx ends.
func flushOnHangup(ctx context.Context, cache *kms.Cache, log *slog.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				cache.Flush()
				log.Info("SIGHUP: data-key cache flushed")
			}
		}
	}()
}

// flushOnKeyringChange flushes the cache when the embedded keyring's file
// changes: `s3seal keys disable|enable|rotate|schedule-deletion` in another
// process then takes effect within one interval instead of the cache's max
// age. It returns at once; the watch stops when ctx ends.
func flushOnKeyringChange(ctx context.Context, path string, interval time.Duration, cache *kms.Cache, log *slog.Logger) {
	last, _ := os.Stat(path)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			fi, err := os.Stat(path)
			if err != nil {
				continue
			}
			if last == nil || !os.SameFile(last, fi) || !last.ModTime().Equal(fi.ModTime()) || last.Size() != fi.Size() {
				cache.Flush()
				log.Info("keyring changed: data-key cache flushed", "file", path)
			}
			last = fi
		}
	}()
}

// startMetrics serves h (the proxy's metrics) at GET /metrics on addr, a
// listener of their own so that they need not be exposed where clients
// reach the S3 API. It returns a function that stops the listener.
func startMetrics(addr string, h http.Handler, log *slog.Logger) (func(), error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	if !loopbackOnly(addr) {
		log.Warn("metrics served without authentication on a non-loopback address: keep it on a private network", "addr", ln.Addr().String())
	}
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
