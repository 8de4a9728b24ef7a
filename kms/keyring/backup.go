package keyring

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/s3seal/s3seal/kms"
)

// Backup and restore. A Backup is the whole keyring as a document: every
// key record as the keyring file holds it (state, deletion date and any
// hold, description, policy, tags, rotation schedule, grants, versions)
// with each version's material in clear instead of sealed under the master
// key, the aliases and the default key. It is the plaintext of the
// encrypted backup file `s3seal keys export` writes (which seals it: the
// keyring package holds no recovery secret), and it does not depend on the
// master key, so it restores into a keyring under another master key or
// passphrase on another host.
//
// The document (JSON):
//
//	{"type": "s3seal keyring backup", "format": 1, "exported": RFC 3339,
//	 "defaultKeyId": "...", "aliases": {"alias/x": "<key id>"},
//	 "keys": [<key record: keyring file format 2, "material" = the 32 bytes
//	          of each version, base64>],
//	 "referenceOnly": ["<key id>", ...]}
//
// A reader refuses another type or a format it does not know. Fields a
// later s3seal adds to key records restore as the keyring file carries
// them.

// Backup document identity.
const (
	BackupType   = "s3seal keyring backup"
	BackupFormat = 1
)

// Backup is a keyring's content with its key material in clear. Zero it
// when done.
type Backup struct {
	doc backupDoc
}

type backupDoc struct {
	Type         string            `json:"type"`
	Format       int               `json:"format"`
	Exported     time.Time         `json:"exported"`
	DefaultKeyID string            `json:"defaultKeyId,omitempty"`
	Aliases      map[string]string `json:"aliases"`
	Keys         []*keyRecord      `json:"keys"`
	// ReferenceOnly lists the keys whose material is not in the backup,
	// only their records (and so their references): keys backed by an
	// HSM, whose key never leaves it.
	ReferenceOnly []string `json:"referenceOnly,omitempty"`
}

// exportable reports whether a key's material can be written into a
// backup. A key held in an HSM (a custom key store, keystore.go) holds
// only a reference to a key that cannot leave the HSM: it answers false,
// and the backup then carries its record (token and labels) with no
// material and lists it in ReferenceOnly, which export and import both
// say. Backing such a key up is the HSM's own business (its backup and
// cloning tools).
func exportable(kr *keyRecord) bool { return kr.Custom == nil }

// MarshalJSON writes the backup document.
func (b *Backup) MarshalJSON() ([]byte, error) { return json.Marshal(&b.doc) }

// UnmarshalJSON reads a backup document and checks its type and format.
func (b *Backup) UnmarshalJSON(data []byte) error {
	var d backupDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	if d.Type != BackupType {
		return fmt.Errorf("not an s3seal keyring backup (type %q)", d.Type)
	}
	if d.Format != BackupFormat {
		return fmt.Errorf("keyring backup format %d is not known to this s3seal (it reads %d): use a newer s3seal", d.Format, BackupFormat)
	}
	if d.Aliases == nil {
		d.Aliases = map[string]string{}
	}
	b.doc = d
	return nil
}

// Zero overwrites the key material the backup holds.
func (b *Backup) Zero() {
	for _, kr := range b.doc.Keys {
		for _, v := range kr.Versions {
			kms.Zero(v.Material)
		}
	}
}

// Exported is when the backup was made.
func (b *Backup) Exported() time.Time { return b.doc.Exported }

// BackedUpKey is what a backup holds of one key, for listing.
type BackedUpKey struct {
	KeyID        string
	State        kms.KeyState
	DeletionDate time.Time
	Versions     int
	Aliases      []string
	Description  string
	// ReferenceOnly: the backup has no material for this key (HSM-backed).
	ReferenceOnly bool
}

// Keys lists the keys in the backup, in keyring order.
func (b *Backup) Keys() []BackedUpKey {
	var out []BackedUpKey
	for _, kr := range b.doc.Keys {
		k := BackedUpKey{KeyID: kr.ID, State: kr.State, DeletionDate: kr.DeletionDate, Versions: len(kr.Versions),
			Description: kr.Description, ReferenceOnly: slices.Contains(b.doc.ReferenceOnly, kr.ID)}
		for a, id := range b.doc.Aliases {
			if id == kr.ID {
				k.Aliases = append(k.Aliases, a)
			}
		}
		slices.Sort(k.Aliases)
		out = append(out, k)
	}
	return out
}

// Backup returns the keyring's content with its material in clear. Keys
// past their deletion date that a guard holds are in it (they still
// exist); keys deleted are not.
func (k *Keyring) Backup() (*Backup, error) {
	b := &Backup{doc: backupDoc{Type: BackupType, Format: BackupFormat, Exported: k.cfg.Now().UTC(), Aliases: map[string]string{}}}
	err := k.read(func(st *state) error {
		now := k.cfg.Now()
		for _, kr := range st.df.Keys {
			if k.gone(kr, now) {
				continue
			}
			// A shallow copy: the published state is never changed in
			// place, and the copy gets its own versions.
			c := *kr
			c.Versions = make([]versionRecord, len(kr.Versions))
			material := exportable(kr)
			for i, v := range kr.Versions {
				c.Versions[i] = v
				c.Versions[i].Material = nil
				if material {
					c.Versions[i].Material = slices.Clone(st.material[kr.ID][i])
				}
			}
			if !material {
				b.doc.ReferenceOnly = append(b.doc.ReferenceOnly, kr.ID)
			}
			b.doc.Keys = append(b.doc.Keys, &c)
		}
		in := map[string]bool{}
		for _, kr := range b.doc.Keys {
			in[kr.ID] = true
		}
		for a, id := range st.df.Aliases {
			if in[id] {
				b.doc.Aliases[a] = id
			}
		}
		if in[st.df.DefaultKeyID] {
			b.doc.DefaultKeyID = st.df.DefaultKeyID
		}
		return nil
	})
	if err != nil {
		b.Zero()
		return nil, err
	}
	return b, nil
}

// RestoreOptions say how a backup goes into a keyring.
type RestoreOptions struct {
	// Merge restores into a keyring that already has keys: keys the
	// keyring lacks are added; a key it has (same id) keeps its record
	// and gets the backup's newer versions, if any, provided the versions
	// both have are the same material (else the restore fails: they are
	// not the same key); an alias the keyring has keeps its target (a
	// running proxy may write under it), and a conflict is reported.
	// Without Merge a keyring with keys is refused.
	Merge bool
	// KeepExpired restores the keys whose deletion date passed while they
	// were in the backup with the deletion cancelled (Disabled, as
	// cancel-deletion leaves a key). Without it they are left out: the
	// keyring would have deleted them, as AWS KMS would have. A key the
	// keyring held past its date (objects were under it) is not expired:
	// it is restored as it was, held.
	KeepExpired bool
}

// RestoreResult says what a restore did, key ids in backup order.
type RestoreResult struct {
	Added    []string
	Extended []string // existing keys given newer versions from the backup
	Same     []string // already in the keyring with the same material
	// Expired keys were past their deletion date: left out, or with
	// KeepExpired restored Disabled.
	Expired []string
	// ReferenceOnly keys have no material in the backup (HSM-backed) and
	// were not restored.
	ReferenceOnly []string
	// AliasConflicts: "alias/x" names another key in the keyring than in
	// the backup; the keyring's target was kept.
	AliasConflicts []string
}

// Restore puts a backup into the keyring, its material sealed under this
// keyring's master key. Scheduled deletions keep their dates. It checks
// the whole backup before it changes anything, and changes the keyring in
// one atomic write.
func (k *Keyring) Restore(b *Backup, opts RestoreOptions) (*RestoreResult, error) {
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("keyring backup: %w", err)
	}
	var res *RestoreResult
	err := k.update(func(st *state) error {
		res = &RestoreResult{}
		if n := len(st.df.Keys); n > 0 && !opts.Merge {
			return fmt.Errorf("the keyring in %s already has %d keys: restore into an empty data dir, or merge the backup into it (--merge)", k.cfg.Dir, n)
		}
		now := k.cfg.Now()
		restored := map[string]bool{}
		for _, bk := range b.doc.Keys {
			if slices.Contains(b.doc.ReferenceOnly, bk.ID) {
				res.ReferenceOnly = append(res.ReferenceOnly, bk.ID)
				continue
			}
			// A key the old keyring held past its date is restored held:
			// objects were under it, and the guard decides again here.
			expired := due(bk, now) && bk.DeletionHold == nil
			if expired {
				res.Expired = append(res.Expired, bk.ID)
				if !opts.KeepExpired {
					continue
				}
			}
			if kr, ok := st.byID[bk.ID]; ok {
				ext, err := k.extend(st, kr, bk)
				if err != nil {
					return err
				}
				if ext {
					res.Extended = append(res.Extended, bk.ID)
				} else {
					res.Same = append(res.Same, bk.ID)
				}
				restored[bk.ID] = true
				continue
			}
			kr := *bk
			kr.Versions = make([]versionRecord, len(bk.Versions))
			mats := make([][]byte, len(bk.Versions))
			for i, v := range bk.Versions {
				sealed, err := k.seal.seal(k.cfg.Rand, v.Material, materialAAD(bk.ID, v.Version))
				if err != nil {
					return err
				}
				kr.Versions[i] = v
				kr.Versions[i].Material = sealed
				mats[i] = slices.Clone(v.Material)
			}
			if expired {
				kr.State, kr.DeletionDate = kms.KeyDisabled, time.Time{}
				kr.DeletionHold, kr.DeletionOverride = nil, false
			}
			st.df.Keys = append(st.df.Keys, &kr)
			st.byID[kr.ID] = &kr
			st.material[kr.ID] = mats
			res.Added = append(res.Added, kr.ID)
			restored[kr.ID] = true
		}
		aliases := make([]string, 0, len(b.doc.Aliases))
		for a := range b.doc.Aliases {
			aliases = append(aliases, a)
		}
		slices.Sort(aliases)
		for _, a := range aliases {
			id := b.doc.Aliases[a]
			if !restored[id] {
				continue
			}
			if cur, ok := st.df.Aliases[a]; ok && cur != id {
				if _, live := st.byID[cur]; live {
					res.AliasConflicts = append(res.AliasConflicts, a)
					continue
				}
			}
			st.df.Aliases[a] = id
		}
		if st.df.DefaultKeyID == "" && restored[b.doc.DefaultKeyID] {
			st.df.DefaultKeyID = b.doc.DefaultKeyID
		}
		if len(res.Added) == 0 && len(res.Extended) == 0 {
			return errNoChange
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// extend checks that the backup's key bk is the keyring's kr (the versions
// both have are the same material) and appends the backup's newer
// versions. It reports whether it appended any.
func (k *Keyring) extend(st *state, kr, bk *keyRecord) (bool, error) {
	mats := st.material[kr.ID]
	for i, v := range bk.Versions {
		if i < len(mats) {
			if subtle.ConstantTimeCompare(mats[i], v.Material) != 1 {
				return false, fmt.Errorf("key %s version %d in the backup is other material than the keyring's key of that id: not the same key, nothing restored", kr.ID, v.Version)
			}
			continue
		}
		sealed, err := k.seal.seal(k.cfg.Rand, v.Material, materialAAD(kr.ID, v.Version))
		if err != nil {
			return false, err
		}
		nv := v
		nv.Material = sealed
		kr.Versions = append(kr.Versions, nv)
		st.material[kr.ID] = append(st.material[kr.ID], slices.Clone(v.Material))
	}
	return len(bk.Versions) > len(mats), nil
}

// validate checks what Restore relies on: well-formed ids, states and
// versions, 32 bytes of material per version (but for reference-only
// keys), aliases naming keys of the backup.
func (b *Backup) validate() error {
	seen := map[string]bool{}
	for _, kr := range b.doc.Keys {
		if _, ok := parseUUID(kr.ID); !ok {
			return fmt.Errorf("malformed key id %q", kr.ID)
		}
		if seen[kr.ID] {
			return fmt.Errorf("key %s twice", kr.ID)
		}
		seen[kr.ID] = true
		switch kr.State {
		case kms.KeyEnabled, kms.KeyDisabled:
		case kms.KeyPendingDeletion:
			if kr.DeletionDate.IsZero() {
				return fmt.Errorf("key %s is pending deletion with no date", kr.ID)
			}
		default:
			return fmt.Errorf("key %s: unknown state %q", kr.ID, kr.State)
		}
		if len(kr.Versions) == 0 {
			return fmt.Errorf("key %s has no versions", kr.ID)
		}
		ref := slices.Contains(b.doc.ReferenceOnly, kr.ID)
		for i, v := range kr.Versions {
			if v.Version != uint32(i+1) {
				return fmt.Errorf("key %s: version %d out of order", kr.ID, v.Version)
			}
			if !ref && len(v.Material) != 32 {
				return fmt.Errorf("key %s version %d: %d bytes of material, want 32", kr.ID, v.Version, len(v.Material))
			}
		}
	}
	for a, id := range b.doc.Aliases {
		if err := validAlias(a); err != nil {
			return err
		}
		if !seen[id] {
			return fmt.Errorf("alias %s names key %s, which the backup does not hold", a, id)
		}
	}
	if b.doc.DefaultKeyID != "" && !seen[b.doc.DefaultKeyID] {
		return errors.New("the default key is not in the backup")
	}
	return nil
}
