package keyring

import (
	"fmt"
	"slices"
	"time"

	"github.com/s3seal/s3seal/kms"
)

// Safe deletion. Deleting a key makes every object under it unrecoverable,
// and the keyring cannot see the store: it knows only what it is told. A
// keyring opened with a DeletionGuard asks the guard (s3seal's reads the
// last key usage report) when a key's waiting period ends, and a key the
// guard finds objects under is not deleted: it stays PendingDeletion,
// usable for nothing as before its date, with a DeletionHold saying why,
// until a later check finds no object (the objects were re-wrapped under
// another key and a new report says so), the deletion is cancelled, or the
// operator overrides the check (OverrideDeletionCheck). Without a guard,
// or with an override, a key is deleted at its date as in AWS KMS.

// DeletionCheck is what a DeletionGuard found about a key.
type DeletionCheck struct {
	// Objects is how many objects the evidence shows under the key; 0
	// lets the deletion go ahead.
	Objects int
	// Evidence says where the count comes from, for the hold and the
	// operator ("the key usage report of ..."). Empty means nothing is
	// known (no report): a key not held is deleted at its date, as in AWS
	// KMS, but a held key stays held: only evidence that no object is
	// under it lets it go (a keyring restored from a backup on a host
	// with no report yet must not delete the keys the old host held).
	Evidence string
}

// DeletionGuard is asked, under the keyring's file lock, whether a key
// whose waiting period has ended may be deleted. It must not call the
// keyring. An error holds the key (fail closed: the check could not be
// made) and is kept as the hold's reason.
type DeletionGuard func(ki *KeyInfo) (DeletionCheck, error)

// DeletionHold says why a key past its deletion date was not deleted.
type DeletionHold struct {
	// Since is when the key was first held.
	Since time.Time `json:"since"`
	// Objects is the count the guard last found (0 if the check failed).
	Objects int `json:"objects,omitempty"`
	// Reason is the guard's evidence, or why the check failed.
	Reason string `json:"reason"`
}

// hold asks the guard about kr, due for deletion (file lock held), and
// records its answer. held: keep the key; changed: kr's record changed.
func (k *Keyring) hold(st *state, kr *keyRecord, now time.Time) (held, changed bool) {
	if kr.DeletionOverride {
		return false, false
	}
	chk, err := k.cfg.DeletionGuard(keyInfo(st, kr))
	var h DeletionHold
	switch {
	case err != nil:
		h = DeletionHold{Reason: "the deletion check failed: " + err.Error()}
	case chk.Objects > 0:
		h = DeletionHold{Objects: chk.Objects, Reason: fmt.Sprintf("%d objects are still under the key according to %s", chk.Objects, chk.Evidence)}
	case chk.Evidence == "" && kr.DeletionHold != nil:
		return true, false
	default:
		return false, false
	}
	if old := kr.DeletionHold; old != nil {
		if old.Objects == h.Objects && old.Reason == h.Reason {
			return true, false
		}
		h.Since = old.Since
	} else {
		h.Since = now.UTC()
	}
	kr.DeletionHold = &h
	return true, true
}

// DeleteDue deletes the keys whose waiting period has ended and that the
// DeletionGuard (if any) clears, and returns the ids of the keys this
// process deleted since the last call (here, or in any other change to the
// keyring, which deletes due keys too) and the keys held. A process that
// owns the keyring calls it periodically, so that a key is deleted at its
// date even when nothing else changes the keyring, a held key is let go
// once a new report clears it, and every deletion is reported.
func (k *Keyring) DeleteDue() (deleted []string, held []KeyInfo, err error) {
	anyDue := false
	if err := k.read(func(st *state) error {
		now := k.cfg.Now()
		anyDue = slices.ContainsFunc(st.df.Keys, func(kr *keyRecord) bool { return due(kr, now) })
		return nil
	}); err != nil {
		return nil, nil, err
	}
	if anyDue {
		// update purges (purgeDeleted) before it runs its function.
		if err := k.update(func(*state) error { return errNoChange }); err != nil {
			return nil, nil, err
		}
	}
	k.purgedMu.Lock()
	deleted, k.purged = k.purged, nil
	k.purgedMu.Unlock()
	err = k.read(func(st *state) error {
		now := k.cfg.Now()
		for _, kr := range st.df.Keys {
			if due(kr, now) && kr.DeletionHold != nil {
				held = append(held, *keyInfo(st, kr))
			}
		}
		return nil
	})
	return deleted, held, err
}

// OverrideDeletionCheck marks a key pending deletion to be deleted at its
// date whatever the DeletionGuard finds (and at once if the date has
// passed: the caller runs DeleteDue). It is the operator's explicit word
// that the objects under the key may be lost.
func (k *Keyring) OverrideDeletionCheck(keyID string) error {
	return k.mutateKey(keyID, func(st *state, kr *keyRecord) error {
		if kr.State != kms.KeyPendingDeletion {
			return &kms.Error{Code: kms.CodeInvalidState, Message: ARN(kr.ID) + " is not pending deletion."}
		}
		if kr.DeletionOverride {
			return errNoChange
		}
		kr.DeletionOverride = true
		return nil
	})
}

// DeletionHolds returns the keys held past their deletion date, by id.
func (k *Keyring) DeletionHolds() (map[string]DeletionHold, error) {
	out := map[string]DeletionHold{}
	err := k.read(func(st *state) error {
		for _, kr := range st.df.Keys {
			if kr.DeletionHold != nil && kr.State == kms.KeyPendingDeletion {
				out[kr.ID] = *kr.DeletionHold
			}
		}
		return nil
	})
	return out, err
}

// HeldDeletions counts the keys held past their deletion date (a metric:
// each is a deletion the operator asked for and must look at).
func (k *Keyring) HeldDeletions() int {
	h, err := k.DeletionHolds()
	if err != nil {
		return 0
	}
	return len(h)
}
