package keyring

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/s3seal/s3seal/kms"
)

// Management operations. Each re-reads the keyring file under the file
// lock, applies the change and writes it back atomically. Errors are
// *kms.Error with AWS KMS's exception names.

// CreateKey creates a new enabled key with one version of key material.
func (k *Keyring) CreateKey(description string) (*kms.KeyMetadata, error) {
	var md *kms.KeyMetadata
	err := k.update(func(st *state) error {
		kr, err := k.newKey(st, description)
		if err != nil {
			return err
		}
		md = metadata(st, kr)
		return nil
	})
	return md, err
}

// ListKeys returns every key (deleted keys excluded), oldest first.
func (k *Keyring) ListKeys() ([]kms.KeyMetadata, error) {
	var out []kms.KeyMetadata
	err := k.read(func(st *state) error {
		now := k.cfg.Now()
		for _, kr := range st.df.Keys {
			if !k.gone(kr, now) {
				out = append(out, *metadata(st, kr))
			}
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b kms.KeyMetadata) int { return a.CreationDate.Compare(b.CreationDate) })
	return out, err
}

// ListAliases returns every alias and the key id it names.
func (k *Keyring) ListAliases() (map[string]string, error) {
	out := map[string]string{}
	err := k.read(func(st *state) error {
		for a, id := range st.df.Aliases {
			if _, err := k.lookup(st, id); err == nil {
				out[a] = id
			}
		}
		return nil
	})
	return out, err
}

var aliasRE = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)

func validAlias(alias string) error {
	if !aliasRE.MatchString(alias) || strings.HasPrefix(alias, "alias/aws/") {
		return &kms.Error{Code: kms.CodeValidation, Message: fmt.Sprintf("invalid alias name %q: want alias/ followed by letters, digits, / _ -, not alias/aws/", alias)}
	}
	return nil
}

// CreateAlias points a new alias at a key.
func (k *Keyring) CreateAlias(alias, keyID string) error {
	if err := validAlias(alias); err != nil {
		return err
	}
	return k.update(func(st *state) error {
		if id, ok := st.df.Aliases[alias]; ok {
			if _, err := k.lookup(st, id); err == nil {
				return &kms.Error{Code: kms.CodeAlreadyExists, Message: "An alias with the name " + alias + " already exists"}
			}
		}
		kr, err := k.lookup(st, keyID)
		if err != nil {
			return err
		}
		st.df.Aliases[alias] = kr.ID
		return nil
	})
}

// UpdateAlias points an existing alias at another key.
func (k *Keyring) UpdateAlias(alias, keyID string) error {
	return k.update(func(st *state) error {
		if _, ok := st.df.Aliases[alias]; !ok {
			return &kms.Error{Code: kms.CodeNotFound, Message: "Alias " + alias + " is not found."}
		}
		kr, err := k.lookup(st, keyID)
		if err != nil {
			return err
		}
		st.df.Aliases[alias] = kr.ID
		return nil
	})
}

// DeleteAlias removes an alias (the key is untouched).
func (k *Keyring) DeleteAlias(alias string) error {
	return k.update(func(st *state) error {
		if _, ok := st.df.Aliases[alias]; !ok {
			return &kms.Error{Code: kms.CodeNotFound, Message: "Alias " + alias + " is not found."}
		}
		delete(st.df.Aliases, alias)
		return nil
	})
}

// mutateKey resolves keyID and applies fn to the key record.
func (k *Keyring) mutateKey(keyID string, fn func(st *state, kr *keyRecord) error) error {
	return k.update(func(st *state) error {
		kr, err := k.lookup(st, keyID)
		if err != nil {
			return err
		}
		return fn(st, kr)
	})
}

// EnableKey enables a disabled key. A key pending deletion must first be
// cancelled (KMSInvalidStateException).
func (k *Keyring) EnableKey(keyID string) error {
	return k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if kr.State == kms.KeyPendingDeletion {
			return usable(kr)
		}
		kr.State = kms.KeyEnabled
		return nil
	})
}

// DisableKey disables a key: it can no longer generate, wrap or unwrap
// data keys (DisabledException) until enabled again.
func (k *Keyring) DisableKey(keyID string) error {
	return k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if kr.State == kms.KeyPendingDeletion {
			return usable(kr)
		}
		kr.State = kms.KeyDisabled
		return nil
	})
}

// RotateKey adds a new version of key material and returns its number.
// New data keys are wrapped under it; older versions keep decrypting.
// The key must be enabled.
func (k *Keyring) RotateKey(keyID string) (int, error) {
	var v int
	err := k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if err := usable(kr); err != nil {
			return err
		}
		if err := k.addVersion(st, kr, k.cfg.Now().UTC(), false); err != nil {
			return err
		}
		v = len(kr.Versions)
		return nil
	})
	return v, err
}

// ScheduleKeyDeletion marks a key PendingDeletion; after days (7 to 30; 0
// means 30) it and every data key it wrapped are gone for good. It
// returns the deletion date.
func (k *Keyring) ScheduleKeyDeletion(keyID string, days int) (time.Time, error) {
	if days == 0 {
		days = DefaultDeletionDays
	}
	if days < MinDeletionDays || days > MaxDeletionDays {
		return time.Time{}, &kms.Error{Code: kms.CodeValidation, Message: fmt.Sprintf("pending window must be %d to %d days, got %d", MinDeletionDays, MaxDeletionDays, days)}
	}
	var when time.Time
	err := k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if kr.State == kms.KeyPendingDeletion {
			return usable(kr)
		}
		when = k.cfg.Now().UTC().Add(time.Duration(days) * 24 * time.Hour)
		kr.State = kms.KeyPendingDeletion
		kr.DeletionDate = when
		return nil
	})
	return when, err
}

// CancelKeyDeletion cancels a scheduled deletion. As in AWS KMS the key is
// then Disabled; EnableKey makes it usable again.
func (k *Keyring) CancelKeyDeletion(keyID string) error {
	return k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if kr.State != kms.KeyPendingDeletion {
			return &kms.Error{Code: kms.CodeInvalidState, Message: ARN(kr.ID) + " is not pending deletion."}
		}
		kr.State = kms.KeyDisabled
		kr.DeletionDate = time.Time{}
		kr.DeletionHold, kr.DeletionOverride = nil, false
		return nil
	})
}
