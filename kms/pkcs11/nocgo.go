//go:build !cgo

package pkcs11

import (
	"context"
	"errors"
)

// Store is the PKCS#11 key store; without cgo it cannot be opened.
type Store struct{}

// Open fails with ErrNoCgo: this build cannot load a PKCS#11 module.
func Open(cfg Config) (*Store, error) { return nil, ErrNoCgo }

var errClosed = errors.New("pkcs11: no store")

// Type implements keyring.KeyStore.
func (s *Store) Type() string { return Type }

// Token implements keyring.KeyStore.
func (s *Store) Token() string { return "" }

// Check implements the cgo build's Check.
func (s *Store) Check(ctx context.Context) error { return ErrNoCgo }

// CreateKey implements keyring.KeyStore.
func (s *Store) CreateKey(ctx context.Context, label string) error { return errClosed }

// Seal implements keyring.KeyStore.
func (s *Store) Seal(ctx context.Context, label string, pt, aad []byte) ([]byte, error) {
	return nil, errClosed
}

// Open implements keyring.KeyStore.
func (s *Store) Open(ctx context.Context, label string, sealed, aad []byte) ([]byte, error) {
	return nil, errClosed
}

// Close implements keyring.KeyStore.
func (s *Store) Close() error { return nil }
