package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
)

// runKeys parses and runs `keys <args...>` and returns its stdout.
func runKeys(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var root struct {
		Keys KeysCmd `cmd:""`
	}
	var out, errOut bytes.Buffer
	root.Keys.out, root.Keys.errOut = &out, &errOut
	t.Cleanup(func() {
		if errOut.Len() > 0 {
			t.Logf("stderr: %s", errOut.String())
		}
	})
	p, err := kong.New(&root, kong.Name("s3seal"), kong.Exit(func(int) { t.Fatal("kong exited") }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := p.Parse(append([]string{"keys"}, args...))
	if err != nil {
		return "", err
	}
	err = ctx.Run()
	return out.String(), err
}

func TestKeysCommands(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("S3SEAL_DATA_DIR", dir)
	t.Setenv("S3SEAL_MASTER_KEY_FILE", "")
	t.Setenv("S3SEAL_KEYRING_PASSPHRASE", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	masterKey, err := masterKeyDefault(dir)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := runKeys(t, "list"); err == nil || !strings.Contains(err.Error(), "no keyring") {
		t.Fatalf("list before create: %v", err)
	}
	out, err := runKeys(t, "--json", "create", "-d", "photos key", "--alias", "alias/photos")
	if err != nil {
		t.Fatal(err)
	}
	var md kms.KeyMetadata
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if md.KeyState != kms.KeyEnabled || md.Description != "photos key" || len(md.Aliases) != 1 || md.KeyVersions != 1 {
		t.Fatalf("%+v", md)
	}
	id := md.KeyID

	out, err = runKeys(t, "list")
	if err != nil || !strings.Contains(out, "KEY ID") || !strings.Contains(out, id) || !strings.Contains(out, "alias/photos") {
		t.Fatalf("list: %v\n%s", err, out)
	}

	// The server's view: a keyring opened on the same dir.
	kr, err := keyring.Open(keyring.Config{Dir: dir, MasterKeyFile: masterKey})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	ctx := context.Background()
	dk, err := kr.GenerateDataKey(ctx, "alias/photos", nil)
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		args  []string
		check func(out string)
		code  string // expected GenerateDataKey error afterwards
	}{
		{[]string{"disable", "alias/photos"}, func(out string) { want(t, out, "Disabled") }, kms.CodeDisabled},
		{[]string{"enable", id}, func(out string) { want(t, out, "Enabled") }, ""},
		{[]string{"rotate", id}, func(out string) { want(t, out, "Versions     2") }, ""},
		{[]string{"schedule-deletion", "--days", "7", id}, func(out string) { want(t, out, "PendingDeletion"); want(t, out, "DeletionDate") }, kms.CodeInvalidState},
		{[]string{"cancel-deletion", id}, func(out string) { want(t, out, "Disabled") }, kms.CodeDisabled},
		{[]string{"enable", "alias/photos"}, nil, ""},
		{[]string{"alias", "alias/second", id}, func(out string) { want(t, out, "alias/photos, alias/second") }, ""},
		{[]string{"alias", "alias/second", "--delete"}, func(out string) { want(t, out, "deleted alias/second") }, ""},
		{[]string{"describe", "alias/photos"}, func(out string) { want(t, out, id) }, ""},
	}
	for _, s := range steps {
		out, err := runKeys(t, s.args...)
		if err != nil {
			t.Fatalf("%v: %v", s.args, err)
		}
		if s.check != nil {
			s.check(out)
		}
		_, err = kr.GenerateDataKey(ctx, id, nil)
		if kms.ErrorCode(err) != s.code && !(s.code == "" && err == nil) {
			t.Fatalf("after %v: GenerateDataKey: %v, want %q", s.args, err, s.code)
		}
	}
	if _, err := kr.Decrypt(ctx, id, dk.Ciphertext, nil); err != nil {
		t.Fatalf("old data key after rotation: %v", err)
	}

	// Errors come back with their KMS names.
	if _, err := runKeys(t, "schedule-deletion", "--days", "3", id); kms.ErrorCode(err) != kms.CodeValidation {
		t.Fatal(err)
	}
	if _, err := runKeys(t, "describe", "alias/nope"); kms.ErrorCode(err) != kms.CodeNotFound {
		t.Fatal(err)
	}
	if _, err := runKeys(t, "alias", "alias/x"); err == nil {
		t.Fatal("alias without key or --delete accepted")
	}
	// A wrong passphrase for a key-file keyring is refused.
	if _, err := runKeys(t, "--passphrase", "x", "list"); err == nil {
		t.Fatal("passphrase accepted for a key-file keyring")
	}
}

func want(t *testing.T, out, s string) {
	t.Helper()
	if !strings.Contains(out, s) {
		t.Fatalf("output lacks %q:\n%s", s, out)
	}
}

func TestKeysRotationsAndPolicy(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("S3SEAL_DATA_DIR", dir)
	t.Setenv("S3SEAL_MASTER_KEY_FILE", "")
	t.Setenv("S3SEAL_KEYRING_PASSPHRASE", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	masterKey, err := masterKeyDefault(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runKeys(t, "--json", "create", "--alias", "alias/r")
	if err != nil {
		t.Fatal(err)
	}
	var md kms.KeyMetadata
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Open(keyring.Config{Dir: dir, MasterKeyFile: masterKey})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	if err := kr.EnableRotation(md.KeyID, 90); err != nil {
		t.Fatal(err)
	}
	if _, err := runKeys(t, "rotate", "alias/r"); err != nil {
		t.Fatal(err)
	}
	out, err = runKeys(t, "rotations", "alias/r")
	if err != nil {
		t.Fatal(err)
	}
	want(t, out, "automatic rotation every 90 days, next ")
	want(t, out, "VERSION  STATE")
	want(t, out, "ON_DEMAND")
	want(t, out, keyring.MaterialID(md.KeyID, 2))
	out, err = runKeys(t, "--json", "rotations", md.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	var v rotationsView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if !v.RotationEnabled || v.RotationPeriodInDays != 90 || len(v.Versions) != 2 || v.Versions[1].State != "CURRENT" || v.Versions[0].RotationType != "" {
		t.Fatalf("%+v", v)
	}

	out, err = runKeys(t, "policy", "alias/r")
	if err != nil || strings.TrimSpace(out) != keyring.DefaultPolicy {
		t.Fatalf("policy: %v\n%s", err, out)
	}
	pol := filepath.Join(t.TempDir(), "p.json")
	locked := `{"Statement":{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}}`
	if err := os.WriteFile(pol, []byte(locked), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err = runKeys(t, "policy", "alias/r", "--set", pol); err != nil || strings.TrimSpace(out) != locked {
		t.Fatalf("policy --set: %v\n%s", err, out)
	}
	if out, err = runKeys(t, "policy", "alias/r", "--default"); err != nil || strings.TrimSpace(out) != keyring.DefaultPolicy {
		t.Fatalf("policy --default: %v\n%s", err, out)
	}
	if err := os.WriteFile(pol, []byte(`{"Statement":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runKeys(t, "policy", "alias/r", "--set", pol); err == nil || !strings.Contains(err.Error(), "policy") {
		t.Fatalf("malformed policy accepted: %v", err)
	}
}
