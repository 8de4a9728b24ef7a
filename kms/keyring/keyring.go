// Package keyring is the embedded keyring: a kms.Client for single-node use
// that keeps its keys in a file in a data directory.
//
// # Keys
//
// Keys look like AWS KMS symmetric keys: a random UUID id, an ARN
// (arn:aws:kms:local:000000000000:key/<id>), aliases ("alias/..."), a
// description, a creation date and a state (Enabled, Disabled,
// PendingDeletion). Each key has one or more versions of 256-bit key
// material; RotateKey adds a version. New data keys are wrapped under the
// newest version, and the wrapped blob records the version so that blobs
// made before a rotation keep decrypting. ScheduleKeyDeletion marks a key
// PendingDeletion for 7 to 30 days (cancellable; cancelling leaves the key
// Disabled, as AWS KMS does); once the date passes the key and its material
// are gone and every blob it wrapped is unrecoverable. A keyring with a
// DeletionGuard asks it first, and keeps a key that still protects objects
// PendingDeletion, held, until the guard finds none or an override says
// delete (deletion.go).
//
// A default key (alias DefaultAlias) is created the first time a caller asks
// for keyID "" or DefaultAlias.
//
// # Wrapped data keys (format version 1)
//
//	offset  size  field
//	0       1     format version, 0x01
//	1       16    key id (the UUID's 16 bytes)
//	17      4     key material version, big endian
//	21      12    nonce (random)
//	33      n+16  AES-256-GCM ciphertext and tag of the data key
//
// The AEAD key is the key version's material; the additional data is
// "s3seal keyring v1 wrap\x00" ‖ bytes 0..21 of the blob ‖ the canonical
// encryption context: uvarint(number of pairs), then for each pair sorted
// by key, uvarint(len(key)) ‖ key ‖ uvarint(len(value)) ‖ value. A blob
// opened under another key, version or context fails authentication
// (InvalidCiphertextException).
//
// A key held in a hardware security module (a custom key store, file
// format 3) wraps with the same layout and additional data under format
// byte 0x02, sealed inside the HSM (keystore.go).
//
// # Policies, tags, rotation and grants (file format 2)
//
// For the KMS API (kmsapi) a key also carries a key policy (the text
// as set; DefaultPolicy unless one was), tags, an automatic rotation
// schedule (RotateDue adds a version once a period of 90 to 2560 days has
// passed; versions record whether they were rotated automatically) and
// grants. The keyring stores them and keeps their invariants; it does not
// decide who may do what. A keyring file that uses none of them is still
// written as file format 1, so a keyring written before them opens
// unchanged and an older s3seal still reads one that never used them; any
// of them makes the file format 2, which an older s3seal refuses instead
// of ignoring a policy. The wrapped-key format is the same in both.
//
// # At rest
//
// The keyring file (keyring.json, mode 0600) holds metadata in clear and
// each version's material sealed with AES-256-GCM under a key derived (HKDF)
// from the master secret: the 32 bytes of the master key file (default
// <dir>/master.key, 0600, generated on first start) or the scrypt hash of a
// passphrase. Writes are atomic (temp file, fsync, rename, fsync of the
// directory). Every mutation takes an flock on keyring.lock, re-reads the
// file, applies the change and writes it, so a CLI and a running server do
// not overwrite each other; readers notice a new file (inode, size, mtime)
// on their next call and reload it.
package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/s3seal/s3seal/kms"
)

// DefaultAlias names the key used when a caller passes keyID "".
const DefaultAlias = "alias/s3seal-default"

// ARN parts of embedded keys.
const (
	Region  = "local"
	Account = "000000000000"
)

// Deletion waiting period bounds, in days (as AWS KMS).
const (
	MinDeletionDays     = 7
	MaxDeletionDays     = 30
	DefaultDeletionDays = 30
)

const (
	wrapFormat    = 1
	wrapHeaderLen = 1 + 16 + 4
	nonceLen      = 12
	tagLen        = 16
	// maxEncrypt is AWS KMS's Encrypt plaintext limit.
	maxEncrypt = 4096
)

// Config opens a keyring.
type Config struct {
	// Dir holds keyring.json and keyring.lock; created (0700) if absent.
	Dir string
	// MasterKeyFile is the master key's path; default <Dir>/master.key.
	// It is generated (0600) when the keyring is created, unless
	// Passphrase is set.
	MasterKeyFile string
	// Passphrase, if set, protects the keyring instead of a master key
	// file (scrypt). It must be given for every open thereafter.
	Passphrase string
	// Now is the clock (deletion dates); time.Now if nil.
	Now func() time.Time
	// Rand is the randomness for key material, ids and nonces;
	// crypto/rand if nil.
	Rand io.Reader
	// KeyStore, if set, is the custom key store (an HSM) that keys
	// created in one (KeyOptions.InKeyStore) live in (keystore.go). The
	// keyring closes it on Close. Keys in a key store answer a KMS error
	// while it is nil or cannot be used (KMSInvalidStateException, or
	// KeyUnavailableException for a failure that may pass); the keyring's
	// other keys work regardless.
	KeyStore KeyStore
	// DeletionGuard, if set, is asked before a key whose waiting period
	// has ended is deleted; a key it finds objects under is held instead
	// (deletion.go). Nil: keys are gone at their deletion date, as in AWS
	// KMS.
	DeletionGuard DeletionGuard
}

// Keyring is the embedded keyring. It is safe for concurrent use, and by
// several processes sharing one Dir.
type Keyring struct {
	cfg      Config
	path     string
	lockPath string

	wmu sync.Mutex // serializes this process's mutations

	mu      sync.RWMutex
	seal    *sealer
	kdf     kdfParams
	st      *state
	fi      os.FileInfo
	closed  bool
	created bool

	// purged lists the keys this process deleted (purgeDeleted, in any
	// mutation) that DeleteDue has not yet reported.
	purgedMu sync.Mutex
	purged   []string
}

var (
	_ kms.Client           = (*Keyring)(nil)
	_ kms.AsymmetricClient = (*Keyring)(nil)
)

// state is one loaded keyring file, immutable once published.
type state struct {
	df       *diskFile
	byID     map[string]*keyRecord
	material map[string][][]byte // key id -> material per version (index version-1)
	// purged lists the keys purgeDeleted dropped from this state (an
	// update's), for Keyring.purged once it is written.
	purged []string
}

// Open opens the keyring in cfg.Dir, creating it (and the master key file)
// on first use.
func Open(cfg Config) (*Keyring, error) {
	if cfg.Dir == "" {
		return nil, errors.New("keyring: Config.Dir is empty")
	}
	if cfg.MasterKeyFile == "" {
		cfg.MasterKeyFile = filepath.Join(cfg.Dir, MasterKeyFileName)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	k := &Keyring{
		cfg:      cfg,
		path:     filepath.Join(cfg.Dir, FileName),
		lockPath: filepath.Join(cfg.Dir, LockFileName),
	}
	lk, err := lockFile(k.lockPath)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	df, fi, err := readDiskFile(k.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := k.create(); err != nil {
			return nil, err
		}
		k.created = true
		return k, nil
	case err != nil:
		return nil, err
	}
	master, err := masterSecret(&k.cfg, df.KDF)
	if err != nil {
		return nil, err
	}
	k.seal, err = newSealer(master)
	kms.Zero(master)
	if err != nil {
		return nil, err
	}
	k.kdf = df.KDF
	if chk, err := k.seal.open(df.Check, checkAAD); err != nil || string(chk) != checkPlaintext {
		return nil, fmt.Errorf("keyring: %s: wrong master key or passphrase", k.path)
	}
	st, err := k.decode(df)
	if err != nil {
		return nil, err
	}
	k.st, k.fi = st, fi
	return k, nil
}

// Created reports whether Open created the keyring (and, without a
// passphrase, generated the master key file): the moment to tell the
// operator to back the master key up.
func (k *Keyring) Created() bool { return k.created }

// MasterKeyFile is the master key file's path ("" for a passphrase
// keyring).
func (k *Keyring) MasterKeyFile() string {
	if k.kdf.Type != kdfFile {
		return ""
	}
	return k.cfg.MasterKeyFile
}

// create makes a new empty keyring (lock held).
func (k *Keyring) create() error {
	kdf := kdfParams{Type: kdfFile}
	if k.cfg.Passphrase != "" {
		salt := make([]byte, 16)
		if _, err := io.ReadFull(k.cfg.Rand, salt); err != nil {
			return err
		}
		kdf = kdfParams{Type: kdfScrypt, Salt: salt, N: scryptN, R: scryptR, P: scryptP}
	} else if _, err := os.Stat(k.cfg.MasterKeyFile); errors.Is(err, fs.ErrNotExist) {
		if err := createMasterKey(k.cfg.MasterKeyFile, k.cfg.Rand); err != nil {
			return err
		}
	}
	master, err := masterSecret(&k.cfg, kdf)
	if err != nil {
		return err
	}
	k.seal, err = newSealer(master)
	kms.Zero(master)
	if err != nil {
		return err
	}
	k.kdf = kdf
	chk, err := k.seal.seal(k.cfg.Rand, []byte(checkPlaintext), checkAAD)
	if err != nil {
		return err
	}
	df := &diskFile{Format: fileFormatV1, KDF: kdf, Check: chk, Keys: []*keyRecord{}, Aliases: map[string]string{}}
	st, err := k.decode(df)
	if err != nil {
		return err
	}
	return k.store(st)
}

// decode unseals every key version of df.
func (k *Keyring) decode(df *diskFile) (*state, error) {
	st := &state{df: df, byID: map[string]*keyRecord{}, material: map[string][][]byte{}}
	for _, kr := range df.Keys {
		var mats [][]byte
		for i, v := range kr.Versions {
			if v.Version != uint32(i+1) {
				return nil, fmt.Errorf("keyring: key %s: version %d out of order", kr.ID, v.Version)
			}
			if kr.Custom != nil {
				// The material is in the HSM: the file has only its label.
				if v.Label == "" || len(v.Material) != 0 {
					return nil, fmt.Errorf("keyring: key %s version %d: a key in a custom key store has a label and no material", kr.ID, v.Version)
				}
				mats = append(mats, nil)
				continue
			}
			m, err := k.seal.open(v.Material, materialAAD(kr.ID, v.Version))
			if err == nil && !materialFits(kr, m) {
				kms.Zero(m)
				err = errors.New("material does not fit the key spec")
			}
			if err != nil {
				return nil, fmt.Errorf("keyring: key %s version %d: cannot unseal material (wrong master key or corrupt file)", kr.ID, v.Version)
			}
			mats = append(mats, m)
		}
		if len(mats) == 0 {
			return nil, fmt.Errorf("keyring: key %s has no material", kr.ID)
		}
		st.byID[kr.ID] = kr
		st.material[kr.ID] = mats
	}
	return st, nil
}

// store writes st to disk and publishes it (file lock held).
func (k *Keyring) store(st *state) error {
	st.df.Format = st.df.format()
	data, err := json.MarshalIndent(st.df, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := writeAtomic(k.path, data); err != nil {
		return fmt.Errorf("keyring: writing %s: %w", k.path, err)
	}
	fi, err := os.Stat(k.path)
	if err != nil {
		return err
	}
	k.publish(st, fi)
	return nil
}

func (k *Keyring) publish(st *state, fi os.FileInfo) {
	// Readers hold k.mu.RLock while they use material, so once the write
	// lock is ours nobody uses the old state's material.
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		zeroState(st)
		return
	}
	old := k.st
	k.st, k.fi = st, fi
	if old != nil && old != st {
		zeroState(old)
	}
}

func zeroState(st *state) {
	for _, ms := range st.material {
		for _, m := range ms {
			kms.Zero(m)
		}
	}
}

// Close zeroes the key material held in memory. The Keyring is unusable
// afterwards.
func (k *Keyring) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.st != nil {
		zeroState(k.st)
	}
	k.st, k.closed = nil, true
	if k.cfg.KeyStore != nil {
		return k.cfg.KeyStore.Close()
	}
	return nil
}

var errNoChange = errors.New("no change")

// update runs fn on a fresh copy of the file read under the file lock and
// writes the result. fn returns errNoChange to skip the write.
func (k *Keyring) update(fn func(st *state) error) error {
	k.wmu.Lock()
	defer k.wmu.Unlock()
	if err := k.checkOpen(); err != nil {
		return err
	}
	lk, err := lockFile(k.lockPath)
	if err != nil {
		return err
	}
	defer lk.unlock()
	removeStaleTemps(k.path)
	df, fi, err := readDiskFile(k.path)
	if err != nil {
		return err
	}
	st, err := k.decode(df)
	if err != nil {
		return err
	}
	changed := k.purgeDeleted(st)
	err = fn(st)
	if errors.Is(err, errNoChange) && !changed {
		zeroState(st)
		k.mu.RLock()
		same := k.fi != nil && os.SameFile(k.fi, fi) && k.fi.ModTime().Equal(fi.ModTime()) && k.fi.Size() == fi.Size()
		k.mu.RUnlock()
		if !same {
			if st, err = k.decode(df); err != nil {
				return err
			}
			k.publish(st, fi)
		}
		return nil
	}
	if err != nil && !errors.Is(err, errNoChange) {
		zeroState(st)
		return err
	}
	if err := k.store(st); err != nil {
		return err
	}
	if len(st.purged) > 0 {
		k.purgedMu.Lock()
		k.purged = append(k.purged, st.purged...)
		k.purgedMu.Unlock()
	}
	return nil
}

// purgeDeleted drops keys whose deletion date has passed, and their
// aliases; with a DeletionGuard, only those it clears (the others are held,
// deletion.go). It reports whether anything changed.
func (k *Keyring) purgeDeleted(st *state) bool {
	now := k.cfg.Now()
	changed := false
	st.df.Keys = slices.DeleteFunc(st.df.Keys, func(kr *keyRecord) bool {
		if !due(kr, now) {
			return false
		}
		if k.cfg.DeletionGuard != nil {
			held, holdChanged := k.hold(st, kr, now)
			changed = changed || holdChanged
			if held {
				return false
			}
		}
		changed = true
		st.purged = append(st.purged, kr.ID)
		for _, m := range st.material[kr.ID] {
			kms.Zero(m)
		}
		delete(st.material, kr.ID)
		delete(st.byID, kr.ID)
		for a, id := range st.df.Aliases {
			if id == kr.ID {
				delete(st.df.Aliases, a)
			}
		}
		if st.df.DefaultKeyID == kr.ID {
			st.df.DefaultKeyID = ""
		}
		return true
	})
	return changed
}

// due reports whether kr's waiting period has ended.
func due(kr *keyRecord, now time.Time) bool {
	return kr.State == kms.KeyPendingDeletion && !now.Before(kr.DeletionDate)
}

// gone reports whether kr counts as deleted though still in the file: once
// its date has passed, unless a DeletionGuard decides (then a key is gone
// only once purgeDeleted has dropped it, and until then PendingDeletion,
// unusable, as before its date).
func (k *Keyring) gone(kr *keyRecord, now time.Time) bool {
	return k.cfg.DeletionGuard == nil && due(kr, now)
}

func (k *Keyring) checkOpen() error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return errors.New("keyring: closed")
	}
	return nil
}

// read runs fn with the current state under the read lock, reloading the
// file first if another process changed it.
func (k *Keyring) read(fn func(st *state) error) error {
	if err := k.reloadIfChanged(); err != nil {
		return err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return errors.New("keyring: closed")
	}
	return fn(k.st)
}

func (k *Keyring) reloadIfChanged() error {
	fi, err := os.Stat(k.path)
	if err != nil {
		return &kms.Error{Code: kms.CodeInternal, Message: "keyring file unreadable", Err: err}
	}
	k.mu.RLock()
	same := k.fi != nil && os.SameFile(k.fi, fi) && k.fi.ModTime().Equal(fi.ModTime()) && k.fi.Size() == fi.Size()
	k.mu.RUnlock()
	if same {
		return nil
	}
	df, fi, err := readDiskFile(k.path)
	if err != nil {
		return &kms.Error{Code: kms.CodeInternal, Message: "keyring file unreadable", Err: err}
	}
	if !bytes.Equal(df.KDF.Salt, k.kdf.Salt) || df.KDF.Type != k.kdf.Type {
		return &kms.Error{Code: kms.CodeInternal, Message: "keyring file was replaced by one with another master key"}
	}
	st, err := k.decode(df)
	if err != nil {
		return &kms.Error{Code: kms.CodeInternal, Message: "keyring file unreadable", Err: err}
	}
	k.publish(st, fi)
	return nil
}

// ARN returns the ARN of key id.
func ARN(id string) string {
	return "arn:aws:kms:" + Region + ":" + Account + ":key/" + id
}

func notFound(keyID string) error {
	return &kms.Error{Code: kms.CodeNotFound, Message: fmt.Sprintf("Key '%s' does not exist", keyID)}
}

// lookup resolves a key id, ARN or alias (not "") to a live key.
func (k *Keyring) lookup(st *state, keyID string) (*keyRecord, error) {
	id := keyID
	if strings.HasPrefix(id, "arn:") {
		parts := strings.SplitN(id, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" || parts[3] != Region || parts[4] != Account {
			return nil, notFound(keyID)
		}
		id = parts[5]
		if rest, ok := strings.CutPrefix(id, "key/"); ok {
			id = rest
		}
	}
	if strings.HasPrefix(id, "alias/") {
		target, ok := st.df.Aliases[id]
		if !ok {
			return nil, &kms.Error{Code: kms.CodeNotFound, Message: fmt.Sprintf("Alias %s is not found.", keyID)}
		}
		id = target
	}
	kr, ok := st.byID[id]
	if !ok || k.gone(kr, k.cfg.Now()) {
		return nil, notFound(keyID)
	}
	return kr, nil
}

// usable checks that kr may be used for cryptographic operations.
func usable(kr *keyRecord) error {
	switch kr.State {
	case kms.KeyEnabled:
		return nil
	case kms.KeyDisabled:
		return &kms.Error{Code: kms.CodeDisabled, Message: ARN(kr.ID) + " is disabled."}
	case kms.KeyPendingDeletion:
		return &kms.Error{Code: kms.CodeInvalidState, Message: ARN(kr.ID) + " is pending deletion."}
	}
	return &kms.Error{Code: kms.CodeInvalidState, Message: ARN(kr.ID) + " is in state " + string(kr.State)}
}

func isDefault(keyID string) bool { return keyID == "" || keyID == DefaultAlias }

// ensureDefault creates the default key if it does not exist.
func (k *Keyring) ensureDefault() error {
	exists := false
	if err := k.read(func(st *state) error {
		_, err := k.lookup(st, DefaultAlias)
		exists = err == nil
		return nil
	}); err != nil {
		return err
	}
	if exists {
		return nil
	}
	return k.update(func(st *state) error {
		if _, err := k.lookup(st, DefaultAlias); err == nil {
			return errNoChange
		}
		kr, err := k.newKey(st, "s3seal default key")
		if err != nil {
			return err
		}
		st.df.Aliases[DefaultAlias] = kr.ID
		st.df.DefaultKeyID = kr.ID
		return nil
	})
}

// withKey resolves keyID (creating the default key if asked for) and runs
// fn under the read lock.
func (k *Keyring) withKey(keyID string, fn func(st *state, kr *keyRecord) error) error {
	if isDefault(keyID) {
		if err := k.ensureDefault(); err != nil {
			return err
		}
		keyID = DefaultAlias
	}
	return k.read(func(st *state) error {
		kr, err := k.lookup(st, keyID)
		if err != nil {
			return err
		}
		return fn(st, kr)
	})
}

func (k *Keyring) newKey(st *state, desc string) (*keyRecord, error) {
	return k.newKeyWith(st, desc, "", false, "")
}

// newKeyWith makes a key of spec ("" or SYMMETRIC_DEFAULT: symmetric;
// RSA_3072, RSA_4096: an RSA key pair), in the custom key store if inStore
// (its first version labelled label there, or s3seal-<key id> if label is
// ""). The key store holds symmetric keys only.
func (k *Keyring) newKeyWith(st *state, desc, spec string, inStore bool, label string) (*keyRecord, error) {
	if spec == kms.KeySpecSymmetric {
		spec = ""
	}
	if spec != "" && rsaBits(spec) == 0 {
		return nil, &kms.Error{Code: kms.CodeValidation, Message: fmt.Sprintf("key spec %q: the keyring makes SYMMETRIC_DEFAULT, RSA_3072 and RSA_4096 keys", spec)}
	}
	if spec != "" && inStore {
		return nil, &kms.Error{Code: kms.CodeValidation, Message: fmt.Sprintf("key spec %q: the custom key store holds SYMMETRIC_DEFAULT keys only", spec)}
	}
	var u [16]byte
	if _, err := io.ReadFull(k.cfg.Rand, u[:]); err != nil {
		return nil, err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	id := formatUUID(u)
	now := k.cfg.Now().UTC()
	kr := &keyRecord{ID: id, Description: desc, CreationDate: now, State: kms.KeyEnabled, KeySpec: spec}
	if inStore {
		if k.cfg.KeyStore == nil {
			return nil, &kms.Error{Code: kms.CodeInvalidState, Message: "no custom key store is configured (S3SEAL_PKCS11_MODULE, S3SEAL_PKCS11_TOKEN_LABEL, S3SEAL_PKCS11_PIN or S3SEAL_PKCS11_PIN_FILE)"}
		}
		if label == "" {
			label = "s3seal-" + id
		}
		if err := validLabel(label); err != nil {
			return nil, err
		}
		kr.Custom = &customRecord{Type: k.cfg.KeyStore.Type(), Token: k.cfg.KeyStore.Token(), Label: label}
	}
	if err := k.addVersion(st, kr, now, false); err != nil {
		return nil, err
	}
	st.df.Keys = append(st.df.Keys, kr)
	st.byID[id] = kr
	return kr, nil
}

func (k *Keyring) addVersion(st *state, kr *keyRecord, now time.Time, automatic bool) error {
	if kr.KeySpec != "" && len(kr.Versions) > 0 {
		return rotationUnsupported(kr)
	}
	if kr.Custom != nil {
		// A new key in the HSM: the file keeps its label only.
		v := uint32(len(kr.Versions) + 1)
		label := versionLabel(kr.Custom.Label, v)
		if err := k.addStoreVersion(kr, label); err != nil {
			return err
		}
		kr.Versions = append(kr.Versions, versionRecord{Version: v, Created: now, Label: label, Automatic: automatic})
		st.material[kr.ID] = append(st.material[kr.ID], nil)
		return nil
	}
	m, err := k.newMaterial(kr)
	if err != nil {
		return err
	}
	v := uint32(len(kr.Versions) + 1)
	sealed, err := k.seal.seal(k.cfg.Rand, m, materialAAD(kr.ID, v))
	if err != nil {
		return err
	}
	kr.Versions = append(kr.Versions, versionRecord{Version: v, Created: now, Material: sealed, Automatic: automatic})
	st.material[kr.ID] = append(st.material[kr.ID], m)
	return nil
}

func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func parseUUID(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, false
	}
	return u, true
}

// canonicalContext is the keyring format's encoding of an encryption
// context (see the package documentation). It is part of the wrapped-key
// format: never change it.
func canonicalContext(encCtx map[string]string) []byte {
	keys := make([]string, 0, len(encCtx))
	for k := range encCtx {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := binary.AppendUvarint(nil, uint64(len(keys)))
	for _, k := range keys {
		v := encCtx[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

func wrapAAD(header []byte, encCtx map[string]string) []byte {
	aad := append([]byte("s3seal keyring v1 wrap\x00"), header...)
	return append(aad, canonicalContext(encCtx)...)
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// wrapInStore seals pt under version v of kr inside its key store:
// wrapped-key format 2, the HSM's nonce in place of ours.
func (k *Keyring) wrapInStore(ctx context.Context, kr *keyRecord, u [16]byte, v uint32, pt []byte, encCtx map[string]string) ([]byte, error) {
	ks, err := k.keyStoreFor(kr)
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, wrapHeaderLen, wrapHeaderLen+nonceLen+len(pt)+tagLen)
	hdr[0] = wrapFormatKS
	copy(hdr[1:17], u[:])
	binary.BigEndian.PutUint32(hdr[17:21], v)
	sealed, err := ks.Seal(ctx, kr.Versions[v-1].Label, pt, wrapAAD(hdr, encCtx))
	if err != nil {
		return nil, keyStoreErr(err)
	}
	if len(sealed) != nonceLen+len(pt)+tagLen {
		return nil, &kms.Error{Code: kms.CodeKeyUnavailable, Message: fmt.Sprintf("the custom key store returned %d bytes for a %d-byte plaintext (want a 12-byte nonce and a 16-byte tag)", len(sealed), len(pt))}
	}
	return append(hdr, sealed...), nil
}

// wrap seals pt under kr's newest version (read lock held).
func (k *Keyring) wrap(ctx context.Context, st *state, kr *keyRecord, pt []byte, encCtx map[string]string) ([]byte, error) {
	if err := symmetricOnly(kr); err != nil {
		return nil, err
	}
	u, ok := parseUUID(kr.ID)
	if !ok {
		return nil, &kms.Error{Code: kms.CodeInternal, Message: "malformed key id " + kr.ID}
	}
	mats := st.material[kr.ID]
	v := uint32(len(mats))
	if kr.Custom != nil {
		return k.wrapInStore(ctx, kr, u, v, pt, encCtx)
	}
	aead, err := gcm(mats[v-1])
	if err != nil {
		return nil, err
	}
	out := make([]byte, wrapHeaderLen+nonceLen, wrapHeaderLen+nonceLen+len(pt)+tagLen)
	out[0] = wrapFormat
	copy(out[1:17], u[:])
	binary.BigEndian.PutUint32(out[17:21], v)
	if _, err := io.ReadFull(k.cfg.Rand, out[wrapHeaderLen:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[wrapHeaderLen:], pt, wrapAAD(out[:wrapHeaderLen], encCtx)), nil
}

func invalidCiphertext() error {
	return &kms.Error{Code: kms.CodeInvalidCiphertext, Message: "The ciphertext is invalid, or was wrapped under another key or encryption context."}
}

// WrappedKeyVersion reads the key id and the key material version an
// embedded-keyring wrapped data key names: both are in clear in the blob
// (its first 21 bytes), so no key is needed, which is what lets a usage
// report count key versions from object headers alone. ok is false for
// anything that is not such a blob (another KMS's); a blob of another KMS
// that happens to parse names a key id the object header does not, which
// the caller checks.
func WrappedKeyVersion(blob []byte) (keyID string, version uint32, ok bool) {
	id, err := blobKeyID(blob)
	if err != nil {
		return "", 0, false
	}
	return id, binary.BigEndian.Uint32(blob[17:21]), true
}

// blobKeyID returns the key id a wrapped blob names.
func blobKeyID(blob []byte) (string, error) {
	if len(blob) < wrapHeaderLen+nonceLen+tagLen || (blob[0] != wrapFormat && blob[0] != wrapFormatKS) {
		return "", invalidCiphertext()
	}
	var u [16]byte
	copy(u[:], blob[1:17])
	return formatUUID(u), nil
}

// unwrap opens blob (read lock held).
func (k *Keyring) unwrap(ctx context.Context, st *state, kr *keyRecord, blob []byte, encCtx map[string]string) ([]byte, error) {
	v := binary.BigEndian.Uint32(blob[17:21])
	mats := st.material[kr.ID]
	if v == 0 || int(v) > len(mats) {
		return nil, invalidCiphertext()
	}
	// The format byte names the backing: a blob that names the other one
	// was not made by this key, whatever its key id says.
	if (blob[0] == wrapFormatKS) != (kr.Custom != nil) {
		return nil, invalidCiphertext()
	}
	if kr.Custom != nil {
		ks, err := k.keyStoreFor(kr)
		if err != nil {
			return nil, err
		}
		pt, err := ks.Open(ctx, kr.Versions[v-1].Label, blob[wrapHeaderLen:], wrapAAD(blob[:wrapHeaderLen], encCtx))
		if err != nil {
			return nil, keyStoreErr(err)
		}
		return pt, nil
	}
	aead, err := gcm(mats[v-1])
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, blob[wrapHeaderLen:wrapHeaderLen+nonceLen], blob[wrapHeaderLen+nonceLen:], wrapAAD(blob[:wrapHeaderLen], encCtx))
	if err != nil {
		return nil, invalidCiphertext()
	}
	return pt, nil
}

// GenerateDataKey implements kms.Client.
func (k *Keyring) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*kms.DataKey, error) {
	var dk *kms.DataKey
	err := k.withKey(keyID, func(st *state, kr *keyRecord) error {
		if err := usable(kr); err != nil {
			return err
		}
		pt := make([]byte, 32)
		if _, err := io.ReadFull(k.cfg.Rand, pt); err != nil {
			return err
		}
		ct, err := k.wrap(ctx, st, kr, pt, encCtx)
		if err != nil {
			kms.Zero(pt)
			return err
		}
		dk = &kms.DataKey{KeyID: kr.ID, Plaintext: pt, Ciphertext: ct}
		return nil
	})
	return dk, err
}

// Encrypt implements kms.Client (plaintext up to 4096 bytes, as AWS KMS).
func (k *Keyring) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	if len(plaintext) == 0 || len(plaintext) > maxEncrypt {
		return nil, &kms.Error{Code: kms.CodeValidation, Message: "plaintext must be 1 to 4096 bytes"}
	}
	var ct []byte
	err := k.withKey(keyID, func(st *state, kr *keyRecord) error {
		if err := usable(kr); err != nil {
			return err
		}
		var err error
		ct, err = k.wrap(ctx, st, kr, plaintext, encCtx)
		return err
	})
	return ct, err
}

// Decrypt implements kms.Client. keyID may be "" (the blob names its key);
// if given, it must resolve to the blob's key (else IncorrectKeyException).
func (k *Keyring) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	var pt []byte
	err := k.read(func(st *state) error {
		var err error
		pt, err = k.decryptLocked(ctx, st, keyID, wrapped, encCtx)
		return err
	})
	return pt, err
}

func (k *Keyring) decryptLocked(ctx context.Context, st *state, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	blobID, err := blobKeyID(wrapped)
	if err != nil {
		return nil, err
	}
	kr, err := k.lookup(st, blobID)
	if err != nil {
		if keyID != "" {
			if _, err2 := k.lookup(st, keyID); err2 != nil {
				return nil, err2
			}
			return nil, &kms.Error{Code: kms.CodeIncorrectKey, Message: "The key ID in the request does not identify the key that wrapped the ciphertext."}
		}
		return nil, err
	}
	if keyID != "" {
		want, err := k.lookup(st, keyID)
		if err != nil {
			return nil, err
		}
		if want.ID != kr.ID {
			return nil, &kms.Error{Code: kms.CodeIncorrectKey, Message: "The key ID in the request does not identify the key that wrapped the ciphertext."}
		}
	}
	if err := usable(kr); err != nil {
		return nil, err
	}
	if err := symmetricOnly(kr); err != nil {
		return nil, err
	}
	return k.unwrap(ctx, st, kr, wrapped, encCtx)
}

// ReEncrypt implements kms.Client.
func (k *Keyring) ReEncrypt(ctx context.Context, srcKeyID string, wrapped []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) ([]byte, string, error) {
	var (
		ct  []byte
		dst string
	)
	err := k.withKey(dstKeyID, func(st *state, dkr *keyRecord) error {
		pt, err := k.decryptLocked(ctx, st, srcKeyID, wrapped, srcCtx)
		if err != nil {
			return err
		}
		defer kms.Zero(pt)
		if err := usable(dkr); err != nil {
			return err
		}
		ct, err = k.wrap(ctx, st, dkr, pt, dstCtx)
		dst = dkr.ID
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return ct, dst, nil
}

// DescribeKey implements kms.Client. It works in every key state.
func (k *Keyring) DescribeKey(ctx context.Context, keyID string) (*kms.KeyMetadata, error) {
	var md *kms.KeyMetadata
	err := k.withKey(keyID, func(st *state, kr *keyRecord) error {
		md = metadata(st, kr)
		return nil
	})
	return md, err
}

func metadata(st *state, kr *keyRecord) *kms.KeyMetadata {
	md := &kms.KeyMetadata{
		KeyID:        kr.ID,
		Arn:          ARN(kr.ID),
		Description:  kr.Description,
		CreationDate: kr.CreationDate,
		KeyState:     kr.State,
		DeletionDate: kr.DeletionDate,
		KeyVersions:  len(kr.Versions),
		KeySpec:      kms.KeySpecSymmetric,
		KeyUsage:     kms.KeyUsageEncrypt,
	}
	if kr.KeySpec != "" {
		md.KeySpec = kr.KeySpec
		md.EncryptionAlgorithms = []string{kms.AlgRSAESOAEPSHA256}
	} else {
		md.EncryptionAlgorithms = []string{kms.AlgSymmetric}
	}
	if kr.Custom != nil {
		md.Origin, md.CustomKeyStoreID = OriginCloudHSM, kr.Custom.storeID()
	}
	for a, id := range st.df.Aliases {
		if id == kr.ID {
			md.Aliases = append(md.Aliases, a)
		}
	}
	slices.Sort(md.Aliases)
	return md
}
