package main

import (
	"crypto/fips140"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// FIPS 140-3 mode (README "FIPS 140-3 mode"). A binary built with
// GOFIPS140=v1.0.0 links the frozen Go Cryptographic Module and runs with
// GODEBUG=fips140=on by default; any Go binary can be run with
// GODEBUG=fips140=on, then with the module in Go's source tree, which is not
// the validated one. The decisions where S3 needs an algorithm FIPS does not
// approve are made here, at startup, so that a process either runs with
// them or does not run:
//
//   - Signature V2 (HMAC-SHA1) is off, and asking for it is an error
//     (fipsAllowSigV2): client authentication is a security function, and
//     SHA-1 is outside the Go module (crypto/sha1), whose HMAC records a
//     SHA-1 key as a non-approved service.
//   - A passphrase keyring is refused (fipsCheckPassphrase): scrypt is not
//     an approved key derivation, and the keyring's every key depends on it.
//   - keys export and import are refused (fipsCheckBackup): a backup is an
//     age file, sealed with ChaCha20-Poly1305 under scrypt or X25519, none of
//     them approved, and it protects every key of the keyring.
//   - GODEBUG=fips140=only is refused (fipsCheckEnforced): the on-store
//     format seals body segments with nonces s3seal builds (FORMAT.md 3,
//     "segment i"), and under "only" crypto/cipher.NewGCM refuses any
//     caller-chosen nonce, so not one object could be written or read.
//
// MD5, SHA-1 checksums and CRCs stay: they serve S3's wire conventions
// (Content-MD5, ETags, x-amz-checksum-*) against accidental corruption, and
// no security property rests on them: object bodies and metadata are
// authenticated by AES-256-GCM, requests by SigV4's HMAC-SHA256.

// fipsModeName is the fips140 GODEBUG setting in effect.
func fipsModeName() string {
	switch {
	case fips140.Enforced():
		return "only"
	case fips140.Enabled():
		return "on"
	}
	return "off"
}

// buildSetting is a runtime/debug build setting of this binary ("" if
// absent).
func buildSetting(key string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// versionText is what `s3seal version` and --version print: the release,
// the Go toolchain, and the FIPS 140-3 mode and module the binary runs with.
func versionText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "s3seal %s\n", version)
	fmt.Fprintf(&b, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	mode := fipsModeName()
	if mode == "only" {
		mode += " (unsupported: s3seal refuses to run with it; use fips140=on)"
	}
	fmt.Fprintf(&b, "fips140 mode: %s\n", mode)
	// GOFIPS140 names the frozen module the binary links (v1.0.0-c2097c7c
	// for GOFIPS140=v1.0.0); without it crypto/fips140.Version says
	// "latest": the module as it is in the toolchain's source tree.
	if setting := buildSetting("GOFIPS140"); setting != "" && setting != "off" {
		fmt.Fprintf(&b, "fips140 module: %s (built with GOFIPS140=%s)\n", fips140.Version(), setting)
	} else {
		fmt.Fprintf(&b, "fips140 module: %s (built without GOFIPS140: not a frozen, validated module)\n", fips140.Version())
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// VersionCmd prints versionText.
type VersionCmd struct{}

func (VersionCmd) Run() error {
	fmt.Println(versionText())
	return nil
}

// errFIPSOnly is why s3seal does not run under GODEBUG=fips140=only.
var errFIPSOnly = errors.New("GODEBUG=fips140=only is not supported: the on-store format encrypts with AES-256-GCM " +
	"under nonces s3seal builds (FORMAT.md), which Go's FIPS 140-3 module refuses in that mode; " +
	"run with GODEBUG=fips140=on (the default of a GOFIPS140 build)")

// fipsCheckEnforced refuses every command but version under fips140=only,
// before any of them could fail halfway (a keyring half created, an upload
// refused at its first byte).
func fipsCheckEnforced(command string) error {
	if !fips140.Enforced() || command == "version" {
		return nil
	}
	return errFIPSOnly
}

// allowSigV2Default is the default of --allow-sigv2: on, except in FIPS
// mode, where Signature V2 is not available at all.
func allowSigV2Default() string {
	if fips140.Enabled() {
		return "false"
	}
	return "true"
}

// fipsAllowSigV2 refuses --allow-sigv2 in FIPS mode: there its default is
// off, so a true value was asked for, and silently running without it would
// leave the operator's V2 clients failing with no word why.
func fipsAllowSigV2(allow bool) error {
	if allow && fips140.Enabled() {
		return errors.New("--allow-sigv2 (S3SEAL_ALLOW_SIGV2): Signature V2 authenticates with HMAC-SHA1, " +
			"which FIPS 140-3 mode does not approve; V2 is off in FIPS mode, so clients must sign with Signature V4")
	}
	return nil
}

// fipsCheckBackup refuses keys export and import in FIPS mode: the backup
// format (age) rests on algorithms FIPS does not approve. An operator who
// accepts a backup outside FIPS protection runs the command with
// GODEBUG=fips140=off, which says so by its name.
func fipsCheckBackup(verb string) error {
	if !fips140.Enabled() {
		return nil
	}
	return fmt.Errorf("keys %s: a keyring backup is an age file, encrypted with ChaCha20-Poly1305 under a key from scrypt "+
		"(passphrase) or X25519 (recipients), which FIPS 140-3 mode does not approve; run this command with "+
		"GODEBUG=fips140=off to accept a backup outside FIPS protection", verb)
}

// fipsCheckPassphrase refuses a passphrase keyring in FIPS mode: its
// master secret comes from scrypt, which is not an approved key derivation.
// A master key file (32 bytes from crypto/rand, the module's DRBG, expanded
// with HKDF-SHA256) is.
func fipsCheckPassphrase(passphrase string) error {
	if passphrase != "" && fips140.Enabled() {
		return errors.New("--passphrase (S3SEAL_KEYRING_PASSPHRASE): a passphrase keyring derives its key with scrypt, " +
			"which FIPS 140-3 mode does not approve; use a master key file (S3SEAL_MASTER_KEY_FILE)")
	}
	return nil
}
