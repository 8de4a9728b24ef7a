package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
)

// A key disabled by another process (the CLI) stops serving from the cache
// of a running proxy within one watch interval.
func TestKeyringChangeFlushesCache(t *testing.T) {
	dir := t.TempDir()
	kr, err := keyring.Open(keyring.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	md, err := kr.CreateKey("watched")
	if err != nil {
		t.Fatal(err)
	}
	cache := kms.NewCache(kr, kms.DefaultCacheConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flushOnKeyringChange(ctx, filepath.Join(dir, keyring.FileName), 10*time.Millisecond, cache, slog.New(slog.NewTextHandler(io.Discard, nil)))
	bucket := kms.BucketContext("b")
	if _, err := cache.GenerateDataKey(ctx, md.KeyID, bucket); err != nil {
		t.Fatal(err)
	}
	cli, err := keyring.Open(keyring.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := cli.DisableKey(md.KeyID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := cache.GenerateDataKey(ctx, md.KeyID, bucket)
		if kms.ErrorCode(err) == kms.CodeDisabled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still served from the cache 5 s after the key was disabled: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
