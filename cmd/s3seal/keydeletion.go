package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/s3seal/s3seal/internal/keyusage"
	"github.com/s3seal/s3seal/internal/objstore"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
)

// Key deletion done safely: the embedded keyring deletes a key at the end
// of its waiting period only if the last key usage report (keys usage,
// key-usage.json in the data dir) shows no object under it. The keyring
// holds one it does show in use: PendingDeletion, unusable as before its
// date, shown as held by keys list, logged and counted by serve, until a
// newer report shows none (the objects were re-wrapped away), the deletion
// is cancelled, or the operator says delete anyway (keys delete --force,
// or schedule-deletion --force, which was told of the objects then).

// usageGuard is the keyring's DeletionGuard for dataDir: the kept usage
// report's count of objects under the key. No report is no evidence: the
// key goes at its date as in AWS KMS (schedule-deletion warned that no
// report existed). An unreadable report, or one that could not read some
// objects (any of them might be under the key), holds the key: the check
// failed, and a deletion cannot be undone.
func usageGuard(dataDir string) keyring.DeletionGuard {
	return func(ki *keyring.KeyInfo) (keyring.DeletionCheck, error) {
		rep, err := loadUsage(dataDir)
		if err != nil || rep == nil {
			return keyring.DeletionCheck{}, err
		}
		when := fmt.Sprintf("the key usage report of %s over %s", rep.Time.Format(time.RFC3339), strings.Join(rep.Scanned, " "))
		u := rep.Key(ki.KeyID)
		if u == nil {
			u = rep.Key(ki.Arn)
		}
		if u != nil && u.Objects > 0 {
			return keyring.DeletionCheck{Objects: u.Objects, Evidence: when}, nil
		}
		if n := len(rep.Failures); n > 0 {
			return keyring.DeletionCheck{}, fmt.Errorf("%s could not read %d objects, which may be under the key: run keys usage again", when, n)
		}
		return keyring.DeletionCheck{Evidence: when}, nil
	}
}

// usageScan counts the objects under each key at the store and keeps the
// report in the data dir, where the guard reads it (serve
// --deletion-scan).
type usageScan func(ctx context.Context) error

// newUsageScan scans targets of st, as keys usage does.
func newUsageScan(st *objstore.Store, targets []keyusage.Target, dataDir string) usageScan {
	return func(ctx context.Context) error {
		rep, err := keyusage.Run(ctx, keyusage.Config{Store: st, Targets: targets})
		if err != nil {
			return err
		}
		// Kept with its failures too: the guard holds every key such a
		// report cannot clear.
		return keepUsage(dataDir, rep)
	}
}

// scannedGuard is the guard of a serve that scans (--deletion-scan): only
// a report taken after a key's waiting period ended counts for it, so that
// no key is deleted on a report older than its date (by a change to the
// keyring before the scan has run); until then the key is held.
func scannedGuard(dataDir string) keyring.DeletionGuard {
	g := usageGuard(dataDir)
	return func(ki *keyring.KeyInfo) (keyring.DeletionCheck, error) {
		rep, err := loadUsage(dataDir)
		if err != nil {
			return keyring.DeletionCheck{}, err
		}
		if rep == nil || rep.Time.Before(ki.DeletionDate) {
			return keyring.DeletionCheck{}, errors.New("no usage scan since the end of the waiting period yet (--deletion-scan runs one within a minute)")
		}
		return g(ki)
	}
}

// rescanHeld is how often a scan runs again while keys are held.
const rescanHeld = time.Hour

// runDeletion deletes the keys whose waiting period has ended, every
// interval until ctx ends, and tells the operator of each key it deletes
// and of each it holds (again whenever the hold changes). With scan, a
// scan runs first whenever a key became due since the last one, and every
// rescanHeld while keys are held; a failed scan deletes nothing.
func runDeletion(ctx context.Context, kr *keyring.Keyring, interval time.Duration, scan usageScan, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	told := map[string]keyring.DeletionHold{}
	var lastScan time.Time
	for {
		scanned := true
		if scan != nil && needScan(kr, lastScan, log) {
			start := time.Now()
			if err := scan(ctx); err != nil {
				scanned = false
				log.Error("the usage scan before deleting keys failed: no key deleted", "err", err)
			} else {
				lastScan = start
				log.Info("usage scan for the keys due for deletion done", "dur", time.Since(start).Round(time.Millisecond))
			}
		}
		var (
			deleted []string
			held    []keyring.KeyInfo
			err     error
		)
		if scanned {
			deleted, held, err = kr.DeleteDue()
		}
		if err != nil {
			log.Error("deleting keys at the end of their waiting period failed", "err", err)
		}
		for _, id := range deleted {
			log.Warn("deleted key: its waiting period ended; objects under it can no longer be decrypted", "key", id)
			delete(told, id)
		}
		for _, ki := range held {
			if h := *ki.DeletionHold; told[ki.KeyID] != h {
				told[ki.KeyID] = h
				log.Warn("key NOT deleted at the end of its waiting period: "+h.Reason+
					". It stays PendingDeletion (unusable). Re-wrap those objects under another key and run keys usage again, cancel the deletion, or delete anyway with s3seal keys delete --force",
					"key", ki.KeyID, "deletion_date", ki.DeletionDate, "objects", h.Objects)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// needScan reports whether a key is due for deletion that the last scan
// (at last) did not see due, or keys are due and that scan is old.
func needScan(kr *keyring.Keyring, last time.Time, log *slog.Logger) bool {
	mds, err := kr.ListKeys()
	if err != nil {
		log.Error("listing keys", "err", err)
		return false
	}
	now := time.Now()
	for _, md := range mds {
		if md.KeyState != kms.KeyPendingDeletion || now.Before(md.DeletionDate) {
			continue
		}
		if last.Before(md.DeletionDate) || now.Sub(last) >= rescanHeld {
			return true
		}
	}
	return false
}

// KeysDeleteCmd deletes a key whose waiting period has ended, now.
type KeysDeleteCmd struct {
	Key   string   `arg:"" help:"Key id, ARN or alias."`
	Force bool     `help:"Delete even though the last key usage report shows objects under the key (they become unrecoverable). Before the end of the waiting period: delete at its end whatever a report then shows."`
	Scan  []string `placeholder:"s3://bucket[/prefix]" help:"Scan these buckets first (as keys usage does, and keeping its report), so that the check counts the objects under the key now rather than at the last report. Repeatable; a scan that cannot read every object stops the deletion."`

	UpstreamOptions `embed:"" envprefix:"S3SEAL_"`

	k *KeysCmd
}

// Run deletes the key if its waiting period has ended and the usage check
// (or --force) allows it.
func (c *KeysDeleteCmd) Run() error {
	if len(c.Scan) > 0 {
		// The same scan and kept report as keys usage: the keyring's
		// guard reads that report.
		scan := KeysUsageCmd{Targets: c.Scan, UpstreamOptions: c.UpstreamOptions, Workers: 16, Progress: "never", Save: true, k: c.k}
		if err := scan.Run(); err != nil {
			return fmt.Errorf("the usage scan before the deletion: %w; nothing deleted", err)
		}
	}
	// Not open: its sweep would delete or hold the key before this
	// command could say what became of it.
	kr, err := c.k.openKeyring(false)
	if err != nil {
		return err
	}
	defer kr.Close()
	ki, err := kr.Key(c.Key)
	if err != nil {
		return err
	}
	if ki.KeyState != kms.KeyPendingDeletion {
		return fmt.Errorf("key %s is %s: schedule its deletion first (keys schedule-deletion); a key is deleted only at the end of a waiting period of 7 to 30 days, as in AWS KMS", ki.KeyID, ki.KeyState)
	}
	if c.Force {
		if err := kr.OverrideDeletionCheck(ki.KeyID); err != nil {
			return err
		}
	}
	if time.Now().Before(ki.DeletionDate) {
		if c.Force {
			fmt.Fprintf(c.k.stdout(), "key %s will be deleted at the end of its waiting period, %s, whatever the usage report then shows\n", ki.KeyID, ki.DeletionDate.UTC().Format(time.RFC3339))
			return nil
		}
		return fmt.Errorf("key %s is deleted at the end of its waiting period, %s, not before (as in AWS KMS); cancel-deletion stops it", ki.KeyID, ki.DeletionDate.UTC().Format(time.RFC3339))
	}
	deleted, held, err := kr.DeleteDue()
	if err != nil {
		return err
	}
	done := false
	for _, id := range deleted {
		if id == ki.KeyID {
			fmt.Fprintf(c.k.stdout(), "deleted key %s: objects under it can no longer be decrypted\n", id)
			done = true
		} else {
			// Due too, and cleared by the same check.
			fmt.Fprintf(c.k.stderr(), "deleted key %s: its waiting period ended\n", id)
		}
	}
	if done {
		return nil
	}
	for _, h := range held {
		if h.KeyID == ki.KeyID {
			return fmt.Errorf("key %s not deleted: %s. Re-wrap those objects under another key (s3seal rewrap s3://bucket --to KEY) and run keys usage again, or pass --force", ki.KeyID, h.DeletionHold.Reason)
		}
	}
	return errors.New("key " + ki.KeyID + " was neither deleted nor held (changed meanwhile?); see keys list")
}
