package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/scrypt"

	"github.com/s3seal/s3seal/kms"
)

// File names inside Config.Dir.
const (
	FileName          = "keyring.json"
	LockFileName      = "keyring.lock"
	MasterKeyFileName = "master.key"
)

// File formats. Format 2 adds, per key, a key policy, tags, automatic
// rotation and grants, and marks automatically rotated versions. A file
// that uses none of these is written as format 1, so that an older s3seal
// still opens it; one that uses any is written as format 2, which an older
// s3seal refuses rather than silently ignoring a policy or a grant.
//
// Format 3 adds RSA key pairs (keySpec RSA_3072 or RSA_4096; their
// material is the PKCS #8 private key, sealed as other material) and keys
// held in a custom key store (keystore.go; their versions carry an HSM
// label and no material): an older s3seal refuses such a file rather than
// failing on material that is not 32 bytes or absent, or offering an RSA
// key as a symmetric one.
const (
	fileFormatV1 = 1
	fileFormatV2 = 2
	fileFormatV3 = 3

	kdfFile   = "file"
	kdfScrypt = "scrypt"

	// scrypt cost for passphrase-protected keyrings (about 32 MiB, 0.1 s);
	// stored in the file, so it can be raised later without breaking old
	// keyrings.
	scryptN = 1 << 15
	scryptR = 8
	scryptP = 1

	checkPlaintext = "s3seal keyring check"
)

// diskFile is the keyring file (JSON). Key material is sealed under the
// master key; everything else is readable metadata.
type diskFile struct {
	Format       int               `json:"format"`
	KDF          kdfParams         `json:"kdf"`
	Check        []byte            `json:"check"` // sealed checkPlaintext: detects a wrong master key
	DefaultKeyID string            `json:"defaultKeyId,omitempty"`
	Keys         []*keyRecord      `json:"keys"`
	Aliases      map[string]string `json:"aliases"` // "alias/name" -> key id
}

type kdfParams struct {
	Type string `json:"type"`           // "file" or "scrypt"
	Salt []byte `json:"salt,omitempty"` // scrypt only
	N    int    `json:"n,omitempty"`
	R    int    `json:"r,omitempty"`
	P    int    `json:"p,omitempty"`
}

type keyRecord struct {
	ID           string          `json:"id"`
	Description  string          `json:"description,omitempty"`
	CreationDate time.Time       `json:"creationDate"`
	State        kms.KeyState    `json:"state"`
	DeletionDate time.Time       `json:"deletionDate,omitzero"`
	Versions     []versionRecord `json:"versions"`

	// KeySpec is "" for a symmetric key, RSA_3072 or RSA_4096 for an RSA
	// key pair (format 3).
	KeySpec string `json:"keySpec,omitempty"`

	// Format 2.

	// Policy is the key policy as set (CreateKey, PutKeyPolicy); ""
	// means DefaultPolicy.
	Policy string            `json:"policy,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
	// Rotation is set while automatic rotation is on.
	Rotation *rotationRecord `json:"rotation,omitempty"`
	Grants   []*Grant        `json:"grants,omitempty"`

	// Format 3.

	// Custom is set for a key held in a custom key store (keystore.go):
	// its versions have a Label and no Material.
	Custom *customRecord `json:"customKeyStore,omitempty"`

	// Safe deletion (deletion.go). Neither makes the file format 2: an
	// older s3seal ignores them and deletes the key at its date, as it
	// always did.

	// DeletionHold is set while a key past its deletion date is kept
	// because the DeletionGuard found objects under it.
	DeletionHold *DeletionHold `json:"deletionHold,omitempty"`
	// DeletionOverride: delete at the date whatever the guard finds (the
	// operator said so: schedule-deletion --force, keys delete --force).
	DeletionOverride bool `json:"deletionOverride,omitempty"`
}

type versionRecord struct {
	Version  uint32    `json:"version"`
	Created  time.Time `json:"created"`
	Material []byte    `json:"material"` // nonce ‖ AES-256-GCM(material), AAD = materialAAD
	// Automatic marks a version made by automatic rotation (format 2);
	// other versions after the first were rotated on demand.
	Automatic bool `json:"automatic,omitempty"`
	// Label names the version's key in the custom key store (format 3),
	// for keys held in one; Material is then empty.
	Label string `json:"label,omitempty"`
}

// rotationRecord is a key's automatic rotation schedule: the next
// rotation is due PeriodDays after Since (when rotation was turned on, or
// the last automatic rotation).
type rotationRecord struct {
	PeriodDays int       `json:"periodDays"`
	Since      time.Time `json:"since"`
}

func (r *rotationRecord) next() time.Time {
	return r.Since.Add(time.Duration(r.PeriodDays) * 24 * time.Hour)
}

// format returns the file format df needs: 3 if any key is an RSA key
// pair or is held in a custom key store (an older s3seal would fail on
// their versions, whose material is not an AES key or is absent, with a
// misleading error), else 2 if any key uses a format 2 field, else 1.
func (df *diskFile) format() int {
	for _, kr := range df.Keys {
		if kr.KeySpec != "" || kr.Custom != nil {
			return fileFormatV3
		}
	}
	for _, kr := range df.Keys {
		if kr.Policy != "" || len(kr.Tags) > 0 || kr.Rotation != nil || len(kr.Grants) > 0 {
			return fileFormatV2
		}
		for _, v := range kr.Versions {
			if v.Automatic {
				return fileFormatV2
			}
		}
	}
	return fileFormatV1
}

// sealer seals key material at rest.
type sealer struct{ aead cipher.AEAD }

// newSealer derives the at-rest key from the raw master secret with HKDF,
// so the master key is used for nothing else.
func newSealer(master []byte) (*sealer, error) {
	k, err := hkdf.Key(sha256.New, master, nil, "s3seal keyring v1 at-rest", 32)
	if err != nil {
		return nil, err
	}
	defer kms.Zero(k)
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(rnd io.Reader, pt, aad []byte) ([]byte, error) {
	out := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(pt)+s.aead.Overhead())
	if _, err := io.ReadFull(rnd, out); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out, pt, aad), nil
}

func (s *sealer) open(ct, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(ct) < n+s.aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	return s.aead.Open(nil, ct[:n], ct[n:], aad)
}

func materialAAD(id string, version uint32) []byte {
	b := []byte("s3seal keyring v1 material\x00" + id + "\x00")
	return binary.BigEndian.AppendUint32(b, version)
}

var checkAAD = []byte("s3seal keyring v1 check")

// masterSecret returns the raw master secret for f's KDF: the master key
// file's 32 bytes or the scrypt hash of the passphrase.
func masterSecret(cfg *Config, kdf kdfParams) ([]byte, error) {
	switch kdf.Type {
	case kdfFile:
		if cfg.Passphrase != "" {
			return nil, fmt.Errorf("keyring: %s is protected by a master key file, but a passphrase was given", cfg.Dir)
		}
		return readMasterKey(cfg.MasterKeyFile)
	case kdfScrypt:
		if cfg.Passphrase == "" {
			return nil, fmt.Errorf("keyring: %s is protected by a passphrase (set S3SEAL_KEYRING_PASSPHRASE)", cfg.Dir)
		}
		if kdf.N < 1<<14 || kdf.R < 1 || kdf.P < 1 || len(kdf.Salt) < 16 {
			return nil, fmt.Errorf("keyring: weak or invalid scrypt parameters in %s", cfg.Dir)
		}
		return scrypt.Key([]byte(cfg.Passphrase), kdf.Salt, kdf.N, kdf.R, kdf.P, 32)
	}
	return nil, fmt.Errorf("keyring: unknown key derivation %q", kdf.Type)
}

func readMasterKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("keyring: master key file %s is missing: without it the keyring cannot be opened (restore it from backup)", path)
		}
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keyring: master key file %s has mode %v; want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("keyring: master key file %s: want 32 bytes, base64-encoded", path)
	}
	return k, nil
}

// createMasterKey writes a new random master key file (0600), failing if
// one exists.
func createMasterKey(path string, rnd io.Reader) error {
	k := make([]byte, 32)
	defer kms.Zero(k)
	if _, err := io.ReadFull(rnd, k); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("keyring: writing master key: %w", err)
	}
	return nil
}

// testHookBeforeRename, if set, runs after the temp file is written and
// synced and before it is renamed over the keyring; an error simulates a
// crash at that point (the temp file is left behind).
var testHookBeforeRename func() error

// writeAtomic replaces path with data: temp file in the same directory,
// fsync, rename, fsync of the directory. Mode 0600.
func writeAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if testHookBeforeRename != nil {
		if err := testHookBeforeRename(); err != nil {
			ok = true // simulate a crash: leave the temp file
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeStaleTemps deletes temp files left by writers that crashed. Call it
// only while holding the file lock (no writer is mid-write then).
func removeStaleTemps(path string) {
	matches, _ := filepath.Glob(path + ".tmp-*")
	for _, m := range matches {
		os.Remove(m)
	}
}

// fileLock is an exclusive flock on the lock file, held by one mutation at
// a time across processes (the CLI and a running server).
type fileLock struct{ f *os.File }

func lockFile(path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("keyring: locking %s: %w", path, err)
	}
	return &fileLock{f: f}, nil
}

func (l *fileLock) unlock() {
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

func readDiskFile(path string) (*diskFile, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	var df diskFile
	dec := json.NewDecoder(io.LimitReader(f, 64<<20))
	if err := dec.Decode(&df); err != nil {
		return nil, nil, fmt.Errorf("keyring: %s: %w", path, err)
	}
	if df.Format != fileFormatV1 && df.Format != fileFormatV2 && df.Format != fileFormatV3 {
		return nil, nil, fmt.Errorf("keyring: %s: unsupported format %d (written by a newer s3seal?)", path, df.Format)
	}
	if df.Aliases == nil {
		df.Aliases = map[string]string{}
	}
	return &df, fi, nil
}
