package keyring

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/s3seal/s3seal/kms"
)

// What the KMS API (kmsapi) needs beyond kms.Client and the
// management operations in manage.go: key policies, tags, automatic
// rotation and grants (keyring file format 2). The keyring stores them and
// keeps their invariants; deciding who may do what is the API server's
// job.

// DefaultPolicy is the key policy of a key created without one: AWS's
// default key policy, which gives the account (here: the KMS API's
// administrator identities) every permission on the key.
const DefaultPolicy = `{
  "Version": "2012-10-17",
  "Id": "key-default-1",
  "Statement": [
    {
      "Sid": "Enable IAM User Permissions",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::` + Account + `:root"},
      "Action": "kms:*",
      "Resource": "*"
    }
  ]
}`

// Automatic rotation periods, in days (as AWS KMS).
const (
	MinRotationDays     = 90
	MaxRotationDays     = 2560
	DefaultRotationDays = 365
)

// Limits (as AWS KMS).
const (
	MaxTags        = 50
	MaxGrantsOnKey = 50000
)

// Grant is a grant on a key: GranteePrincipal may perform Operations,
// under Constraints, until the grant is retired or revoked.
type Grant struct {
	ID                string            `json:"id"`
	Name              string            `json:"name,omitempty"`
	GranteePrincipal  string            `json:"granteePrincipal"`
	RetiringPrincipal string            `json:"retiringPrincipal,omitempty"`
	Operations        []string          `json:"operations"`
	Constraints       *GrantConstraints `json:"constraints,omitempty"`
	CreationDate      time.Time         `json:"creationDate"`
}

// GrantConstraints restrict a grant to requests whose encryption context
// equals, or includes, the given pairs.
type GrantConstraints struct {
	EncryptionContextEquals map[string]string `json:"encryptionContextEquals,omitempty"`
	EncryptionContextSubset map[string]string `json:"encryptionContextSubset,omitempty"`
}

func (g *Grant) clone() Grant {
	c := *g
	c.Operations = slices.Clone(g.Operations)
	if g.Constraints != nil {
		c.Constraints = &GrantConstraints{
			EncryptionContextEquals: maps.Clone(g.Constraints.EncryptionContextEquals),
			EncryptionContextSubset: maps.Clone(g.Constraints.EncryptionContextSubset),
		}
	}
	return c
}

// KeyInfo is everything the keyring holds about a key but its material.
// It is a copy: changing it changes nothing.
type KeyInfo struct {
	kms.KeyMetadata
	// Policy is the key policy text; DefaultPolicy unless one was set.
	Policy string
	Tags   map[string]string
	// Rotation is nil while automatic rotation is off.
	Rotation *Rotation
	// Versions of key material, oldest first; the last is current.
	Versions []Version
	Grants   []Grant
	// DeletionHold is set while the key is kept past its deletion date
	// (deletion.go); DeletionOverride when it will be deleted at its date
	// whatever the check finds.
	DeletionHold     *DeletionHold
	DeletionOverride bool
}

// Rotation is a key's automatic rotation schedule.
type Rotation struct {
	PeriodDays   int
	NextRotation time.Time
}

// Version is one version of a key's material.
type Version struct {
	Version int
	Created time.Time
	// Automatic: made by automatic rotation. Versions after the first
	// that are not were rotated on demand.
	Automatic bool
	// MaterialID names the version without revealing anything of it (AWS
	// KMS's KeyMaterialId): hex SHA-256 of the key id and version.
	MaterialID string
	// Label is the version's key label in the custom key store, for a key
	// held in one.
	Label string
}

// MaterialID is the KeyMaterialId of version v of key id.
func MaterialID(id string, v int) string {
	h := sha256.New()
	fmt.Fprintf(h, "s3seal key material id\x00%s\x00%d", id, v)
	return hex.EncodeToString(h.Sum(nil))
}

func keyInfo(st *state, kr *keyRecord) *KeyInfo {
	ki := &KeyInfo{KeyMetadata: *metadata(st, kr), Policy: kr.Policy, Tags: maps.Clone(kr.Tags)}
	if ki.Policy == "" {
		ki.Policy = DefaultPolicy
	}
	if kr.Rotation != nil {
		ki.Rotation = &Rotation{PeriodDays: kr.Rotation.PeriodDays, NextRotation: kr.Rotation.next()}
	}
	for _, v := range kr.Versions {
		ki.Versions = append(ki.Versions, Version{Version: int(v.Version), Created: v.Created, Automatic: v.Automatic, MaterialID: MaterialID(kr.ID, int(v.Version)), Label: v.Label})
	}
	for _, g := range kr.Grants {
		ki.Grants = append(ki.Grants, g.clone())
	}
	if kr.DeletionHold != nil {
		h := *kr.DeletionHold
		ki.DeletionHold = &h
	}
	ki.DeletionOverride = kr.DeletionOverride
	return ki
}

// Key returns a key's full record by id, ARN or alias, in any state.
func (k *Keyring) Key(keyID string) (*KeyInfo, error) {
	var ki *KeyInfo
	err := k.read(func(st *state) error {
		kr, err := k.lookup(st, keyID)
		if err != nil {
			return err
		}
		ki = keyInfo(st, kr)
		return nil
	})
	return ki, err
}

// BlobKey returns the id of the key a wrapped blob (from GenerateDataKey,
// Encrypt or ReEncrypt) names, and the version of its material that
// wrapped it, without opening it. A blob this keyring could not have made
// gets InvalidCiphertextException.
func BlobKey(blob []byte) (id string, version int, err error) {
	id, err = blobKeyID(blob)
	if err != nil {
		return "", 0, err
	}
	return id, blobVersion(blob), nil
}

func blobVersion(blob []byte) int {
	return int(uint32(blob[17])<<24 | uint32(blob[18])<<16 | uint32(blob[19])<<8 | uint32(blob[20]))
}

// KeyOptions are the settings of a new key.
type KeyOptions struct {
	Description string
	// Policy is the key policy; "" gives DefaultPolicy. The keyring does
	// not parse it: validate it before.
	Policy string
	Tags   map[string]string
	// KeySpec is "" or SYMMETRIC_DEFAULT (a symmetric key), RSA_3072 or
	// RSA_4096 (an RSA key pair).
	KeySpec string
	// InKeyStore creates the key in the custom key store (Config.KeyStore,
	// an HSM): its material is made in the HSM and never leaves it.
	// Symmetric keys only.
	InKeyStore bool
	// Label is, with InKeyStore, the HSM label of the key's first version
	// (later versions add -v2, -v3, ...); default s3seal-<key id>.
	Label string
}

// CreateKeyWith creates a new enabled key with one version of key
// material.
func (k *Keyring) CreateKeyWith(opts KeyOptions) (*KeyInfo, error) {
	if len(opts.Tags) > MaxTags {
		return nil, tagLimit()
	}
	var ki *KeyInfo
	err := k.update(func(st *state) error {
		kr, err := k.newKeyWith(st, opts.Description, opts.KeySpec, opts.InKeyStore, opts.Label)
		if err != nil {
			return err
		}
		if opts.Policy != DefaultPolicy {
			kr.Policy = opts.Policy
		}
		if len(opts.Tags) > 0 {
			kr.Tags = maps.Clone(opts.Tags)
		}
		ki = keyInfo(st, kr)
		return nil
	})
	return ki, err
}

// SetPolicy replaces a key's policy (any state but deleted). The keyring
// does not parse it: validate it before.
func (k *Keyring) SetPolicy(keyID, policy string) error {
	return k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if policy == DefaultPolicy {
			policy = ""
		}
		kr.Policy = policy
		return nil
	})
}

// SetDescription replaces a key's description.
func (k *Keyring) SetDescription(keyID, description string) error {
	return k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		kr.Description = description
		return nil
	})
}

func tagLimit() error {
	return &kms.Error{Code: kms.CodeLimitExceeded, Message: fmt.Sprintf("a key has at most %d tags", MaxTags)}
}

// TagKey adds or replaces tags. A key pending deletion cannot be tagged
// (KMSInvalidStateException).
func (k *Keyring) TagKey(keyID string, tags map[string]string) error {
	return k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if kr.State == kms.KeyPendingDeletion {
			return usable(kr)
		}
		merged := maps.Clone(kr.Tags)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, tags)
		if len(merged) > MaxTags {
			return tagLimit()
		}
		kr.Tags = merged
		return nil
	})
}

// UntagKey removes tags (absent ones are ignored).
func (k *Keyring) UntagKey(keyID string, tagKeys []string) error {
	return k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if kr.State == kms.KeyPendingDeletion {
			return usable(kr)
		}
		for _, t := range tagKeys {
			delete(kr.Tags, t)
		}
		if len(kr.Tags) == 0 {
			kr.Tags = nil
		}
		return nil
	})
}

// EnableRotation turns automatic rotation on, every periodDays (0: the
// default, 365; else 90 to 2560). The first rotation is due periodDays
// from now, or, if rotation was already on, periodDays after the last
// automatic rotation (or when it was turned on). The key must be enabled.
func (k *Keyring) EnableRotation(keyID string, periodDays int) error {
	if periodDays == 0 {
		periodDays = DefaultRotationDays
	}
	if periodDays < MinRotationDays || periodDays > MaxRotationDays {
		return &kms.Error{Code: kms.CodeValidation, Message: fmt.Sprintf("rotation period must be %d to %d days, got %d", MinRotationDays, MaxRotationDays, periodDays)}
	}
	return k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if err := usable(kr); err != nil {
			return err
		}
		if kr.KeySpec != "" {
			return rotationUnsupported(kr)
		}
		if kr.Rotation != nil {
			kr.Rotation.PeriodDays = periodDays
			return nil
		}
		kr.Rotation = &rotationRecord{PeriodDays: periodDays, Since: k.cfg.Now().UTC()}
		return nil
	})
}

// DisableRotation turns automatic rotation off. The key must be enabled.
func (k *Keyring) DisableRotation(keyID string) error {
	return k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if err := usable(kr); err != nil {
			return err
		}
		kr.Rotation = nil
		return nil
	})
}

// RotateDue rotates every enabled key whose automatic rotation is due and
// returns their ids. A disabled key is not rotated; once enabled again it
// is rotated at the next call if its date has passed. Several processes
// sharing the keyring may call it: a key is rotated once per due date.
func (k *Keyring) RotateDue() ([]string, error) {
	due := func(kr *keyRecord, now time.Time) bool {
		return kr.State == kms.KeyEnabled && kr.Rotation != nil && !now.Before(kr.Rotation.next())
	}
	someDue := false
	if err := k.read(func(st *state) error {
		now := k.cfg.Now()
		someDue = slices.ContainsFunc(st.df.Keys, func(kr *keyRecord) bool { return due(kr, now) })
		return nil
	}); err != nil || !someDue {
		return nil, err
	}
	var rotated []string
	err := k.update(func(st *state) error {
		now := k.cfg.Now().UTC()
		for _, kr := range st.df.Keys {
			if !due(kr, now) {
				continue
			}
			if err := k.addVersion(st, kr, now, true); err != nil {
				return err
			}
			kr.Rotation.Since = now
			rotated = append(rotated, kr.ID)
		}
		if len(rotated) == 0 {
			return errNoChange
		}
		return nil
	})
	return rotated, err
}

// newGrantID returns 64 hex characters, the form of AWS KMS grant ids.
func newGrantID(rnd io.Reader) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// CreateGrant adds a grant to a key and returns it with its id and
// creation date set. The key must not be pending deletion. The keyring
// does not check the operations or principals: validate them before.
func (k *Keyring) CreateGrant(keyID string, g Grant) (Grant, error) {
	var out Grant
	err := k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if kr.State == kms.KeyPendingDeletion {
			return usable(kr)
		}
		if len(kr.Grants) >= MaxGrantsOnKey {
			return &kms.Error{Code: kms.CodeLimitExceeded, Message: fmt.Sprintf("a key has at most %d grants", MaxGrantsOnKey)}
		}
		id, err := newGrantID(k.cfg.Rand)
		if err != nil {
			return err
		}
		ng := g.clone()
		ng.ID, ng.CreationDate = id, k.cfg.Now().UTC()
		kr.Grants = append(kr.Grants, &ng)
		out = ng.clone()
		return nil
	})
	return out, err
}

// DeleteGrant removes a grant (retired or revoked): from then on it allows
// nothing. An unknown grant id gets NotFoundException.
func (k *Keyring) DeleteGrant(keyID, grantID string) error {
	return k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		i := slices.IndexFunc(kr.Grants, func(g *Grant) bool { return g.ID == grantID })
		if i < 0 {
			return &kms.Error{Code: kms.CodeNotFound, Message: "Grant ID " + grantID + " not found"}
		}
		kr.Grants = slices.Delete(kr.Grants, i, i+1)
		if len(kr.Grants) == 0 {
			kr.Grants = nil
		}
		return nil
	})
}

// Grants returns every grant of every key (deleted keys excluded), with
// the key id each is on.
func (k *Keyring) Grants() (map[string][]Grant, error) {
	out := map[string][]Grant{}
	err := k.read(func(st *state) error {
		now := k.cfg.Now()
		for _, kr := range st.df.Keys {
			if k.gone(kr, now) {
				continue
			}
			for _, g := range kr.Grants {
				out[kr.ID] = append(out[kr.ID], g.clone())
			}
		}
		return nil
	})
	return out, err
}
