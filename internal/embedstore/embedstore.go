// Package embedstore runs the filesystem-backed S3 store that `s3seal
// serve` uses when no upstream is configured, so that the quick start needs
// nothing but the s3seal binary.
//
// It is gofakes3 (github.com/johannesboyne/gofakes3) with its afero
// filesystem backend: a small, pure-Go S3 server that keeps objects as files
// and metadata beside them. We chose it over versitygw's posix backend
// because it needs no extended attributes on the data directory and adds
// few dependencies; its limits (one global lock per write, multipart parts
// held in memory until completed, no signature checks) are acceptable for a
// single-node default (partETags mends its multipart ETags) and irrelevant behind s3seal, which listens on
// loopback for it with random credentials. Point S3SEAL_UPSTREAM at MinIO or
// S3 for anything serious.
package embedstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"
)

// Store is a running embedded S3 store.
type Store struct {
	URL string // http://127.0.0.1:port
	srv *http.Server
}

// Start serves the store from dir on a free loopback port.
func Start(dir string, log *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fs := afero.NewBasePathFs(afero.NewOsFs(), abs)
	backend, err := s3afero.MultiBucket(fs)
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	faker := gofakes3.New(backend,
		gofakes3.WithTimeSkewLimit(0),
		gofakes3.WithMetadataSizeLimit(8192),
		gofakes3.WithLogger(gofakes3.DiscardLog()),
	)
	handler, err := newPartETags(faker.Server(), backend, filepath.Join(abs, "multipart-etags.json"))
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Store{
		URL: "http://" + ln.Addr().String(),
		srv: &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second},
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("embedded store stopped", "err", err)
		}
	}()
	return s, nil
}

// Close stops the store.
func (s *Store) Close(ctx context.Context) error { return s.srv.Shutdown(ctx) }
