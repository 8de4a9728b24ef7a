package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/s3seal/s3seal/kms/keyring"
)

// Where the embedded keyring's master key lives. A key file beside the data
// it protects protects nothing from whoever copies the directory (a backup,
// a volume snapshot, a stolen disk): the keyring is sealed with it, and the
// objects' data keys with the keyring. So the default key file lives apart,
// in the user's configuration directory, named after the data dir it
// unlocks; one inside the data dir is refused unless accepted by name,
// except the <data dir>/master.key that earlier versions created, which
// keeps working with a warning.

// masterKey is where a keyring's master key was found or will be made.
type masterKey struct {
	path string
	// inDataDir: path is inside the data dir.
	inDataDir bool
	// legacy: the <data dir>/master.key of an earlier version, found
	// because no path was configured or the configured file does not
	// exist (yet: an upgrade that has not moved it).
	legacy bool
	// moveTo is the configured path a legacy key should be moved to.
	moveTo string
}

// masterKeyDefault is the key file for dataDir when none is configured and
// no legacy one exists: <user config dir>/s3seal/<hash of the data dir's
// absolute path>.key.
func masterKeyDefault(dataDir string) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration directory for the master key (%w); set S3SEAL_MASTER_KEY_FILE to a path outside the data dir", err)
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(base, "s3seal", hex.EncodeToString(sum[:8])+".key"), nil
}

// keyringConfig is the keyring configuration the options give, with the
// master key file resolved (none for a passphrase keyring).
func (o *KeyringOptions) keyringConfig() (keyring.Config, masterKey, error) {
	// Every command opens the keyring with the same guard, so that none
	// deletes a key at its date that the others would hold.
	cfg := keyring.Config{Dir: o.DataDir, Passphrase: o.Passphrase, DeletionGuard: usageGuard(o.DataDir)}
	if err := fipsCheckPassphrase(o.Passphrase); err != nil {
		return cfg, masterKey{}, err
	}
	ks, err := o.keyStore()
	if err != nil {
		return cfg, masterKey{}, err
	}
	cfg.KeyStore = ks
	if o.Passphrase != "" {
		return cfg, masterKey{}, nil
	}
	mk := masterKey{path: o.MasterKeyFile}
	if mk.path == "" {
		var err error
		if mk.path, err = masterKeyDefault(o.DataDir); err != nil {
			return cfg, mk, err
		}
	}
	legacy := filepath.Join(o.DataDir, keyring.MasterKeyFileName)
	if _, err := os.Stat(mk.path); errors.Is(err, fs.ErrNotExist) && mk.path != legacy {
		if _, err := os.Stat(legacy); err == nil {
			mk = masterKey{path: legacy, legacy: true, moveTo: mk.path}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return cfg, mk, err
		}
	}
	in, err := inside(o.DataDir, mk.path)
	if err != nil {
		return cfg, mk, err
	}
	mk.inDataDir = in
	cfg.MasterKeyFile = mk.path
	return cfg, mk, nil
}

// ensureDir makes the key file's directory (0700) so that the keyring can
// create the file on first start.
func (mk masterKey) ensureDir() error {
	if mk.path == "" {
		return nil
	}
	return os.MkdirAll(filepath.Dir(mk.path), 0o700)
}

// inside reports whether path is dir or lies under it, symbolic links
// resolved as far as they exist.
func inside(dir, path string) (bool, error) {
	d, err := realPath(dir)
	if err != nil {
		return false, err
	}
	p, err := realPath(path)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(d, p)
	if err != nil {
		return false, nil
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))), nil
}

// realPath is path made absolute with the symbolic links of its longest
// existing prefix resolved.
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	for cur := abs; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// errMasterKeyInDataDir explains how to keep the key apart.
func errMasterKeyInDataDir(path, dataDir string) error {
	return fmt.Errorf("the master key file %s is inside the data dir %s it protects: whoever copies that directory "+
		"(a backup, a volume snapshot) can decrypt every object. Keep it apart: set S3SEAL_MASTER_KEY_FILE "+
		"(--master-key-file) to a path outside the data dir, ideally on another volume, and back it up separately; "+
		"or protect the keyring with S3SEAL_KEYRING_PASSPHRASE; or accept the risk with "+
		"--allow-master-key-in-data-dir (S3SEAL_ALLOW_MASTER_KEY_IN_DATA_DIR=true)", path, dataDir)
}
