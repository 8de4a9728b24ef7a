package keyring

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/kms"
)

// guardStub is what a deletion guard answers, per key id, and how often it
// was asked.
type guardStub struct {
	mu      sync.Mutex
	objects map[string]int
	fail    error
	asked   int
}

func (g *guardStub) guard(ki *KeyInfo) (DeletionCheck, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked++
	if g.fail != nil {
		return DeletionCheck{}, g.fail
	}
	return DeletionCheck{Objects: g.objects[ki.KeyID], Evidence: "the stub's report"}, nil
}

func (g *guardStub) set(id string, n int) { g.mu.Lock(); g.objects[id] = n; g.mu.Unlock() }

// TestDeletionHeld: with a guard, a key whose waiting period ends while
// the guard finds objects under it is not deleted: it stays
// PendingDeletion and unusable, its hold says why, its wrapped keys still
// open once the deletion is cancelled; a key the guard finds nothing under
// is deleted at its date; a held key goes once the guard finds none, or
// at once with an override; a failing check holds too.
func TestDeletionHeld(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g := &guardStub{objects: map[string]int{}}
	dir := t.TempDir()
	k := open(t, Config{Dir: dir, Now: clk.Now, DeletionGuard: g.guard})
	ctx := context.Background()
	used, unused, later := mustCreate(t, k, "used"), mustCreate(t, k, "unused"), mustCreate(t, k, "later")
	if err := k.CreateAlias("alias/used", used); err != nil {
		t.Fatal(err)
	}
	ec := kms.BucketContext("b")
	dk, err := k.GenerateDataKey(ctx, used, ec)
	if err != nil {
		t.Fatal(err)
	}
	g.set(used, 12)
	for _, id := range []string{used, unused} {
		if _, err := k.ScheduleKeyDeletion(id, 7); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := k.ScheduleKeyDeletion(later, 30); err != nil {
		t.Fatal(err)
	}
	// Before the date nothing is asked or deleted.
	clk.Add(6 * 24 * time.Hour)
	if del, held, err := k.DeleteDue(); err != nil || del != nil || held != nil || g.asked != 0 {
		t.Fatalf("before the date: deleted %v held %v err %v, guard asked %d times", del, held, err, g.asked)
	}
	clk.Add(24 * time.Hour)
	del, held, err := k.DeleteDue()
	if err != nil {
		t.Fatal(err)
	}
	if len(del) != 1 || del[0] != unused {
		t.Fatalf("deleted %v, want only %s", del, unused)
	}
	if len(held) != 1 || held[0].KeyID != used || held[0].DeletionHold.Objects != 12 ||
		!strings.Contains(held[0].DeletionHold.Reason, "12 objects") || !strings.Contains(held[0].DeletionHold.Reason, "the stub's report") {
		t.Fatalf("held %+v", held)
	}
	if _, err := k.DescribeKey(ctx, unused); kms.ErrorCode(err) != kms.CodeNotFound {
		t.Fatalf("the unused key after its date: %v", err)
	}
	// Held: still there, PendingDeletion, its alias too, unusable.
	md, err := k.DescribeKey(ctx, "alias/used")
	if err != nil || md.KeyState != kms.KeyPendingDeletion {
		t.Fatalf("held key: %+v %v", md, err)
	}
	if _, err := k.Decrypt(ctx, "", dk.Ciphertext, ec); kms.ErrorCode(err) != kms.CodeInvalidState {
		t.Fatalf("decrypt under a held key: %v", err)
	}
	if holds, _ := k.DeletionHolds(); len(holds) != 1 || k.HeldDeletions() != 1 {
		t.Fatalf("holds %v", holds)
	}
	// The hold is in the file: another process sees it, and a mutation
	// (which purges) does not delete the key either.
	k2 := open(t, Config{Dir: dir, Now: clk.Now, DeletionGuard: g.guard})
	if ki, err := k2.Key(used); err != nil || ki.DeletionHold == nil || ki.DeletionHold.Since != clk.Now() {
		t.Fatalf("second open: %+v %v", ki, err)
	}
	mustCreate(t, k2, "a mutation")
	if _, err := k.Key(used); err != nil {
		t.Fatalf("held key after a mutation: %v", err)
	}
	// Asked again with the same answer: no write.
	before := fileStat(t, dir)
	clk.Add(time.Hour)
	if _, held, _ := k.DeleteDue(); len(held) != 1 {
		t.Fatal("no longer held")
	}
	if after := fileStat(t, dir); !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		t.Error("an unchanged hold rewrote the keyring file")
	}
	// Cancel: usable again once enabled, the hold gone.
	if err := k.CancelKeyDeletion(used); err != nil {
		t.Fatal(err)
	}
	if err := k.EnableKey(used); err != nil {
		t.Fatal(err)
	}
	if pt, err := k.Decrypt(ctx, "", dk.Ciphertext, ec); err != nil || string(pt) != string(dk.Plaintext) {
		t.Fatalf("decrypt after cancel: %v", err)
	}
	if ki, _ := k.Key(used); ki.DeletionHold != nil {
		t.Fatal("hold kept after cancel")
	}

	// Held again, then cleared by a new answer.
	if _, err := k.ScheduleKeyDeletion(used, 7); err != nil {
		t.Fatal(err)
	}
	clk.Add(7 * 24 * time.Hour)
	if _, held, _ := k.DeleteDue(); len(held) != 1 {
		t.Fatalf("held %v", held)
	}
	g.set(used, 0)
	if del, _, _ := k.DeleteDue(); len(del) != 1 || del[0] != used {
		t.Fatalf("after the objects went: deleted %v", del)
	}
	if _, err := k.DescribeKey(ctx, "alias/used"); kms.ErrorCode(err) != kms.CodeNotFound {
		t.Fatalf("alias of the deleted key: %v", err)
	}

	// A failing check holds; the override deletes.
	g.fail = errors.New("report unreadable")
	clk.Add(30 * 24 * time.Hour)
	_, held, _ = k.DeleteDue()
	if len(held) != 1 || held[0].KeyID != later || !strings.Contains(held[0].DeletionHold.Reason, "report unreadable") {
		t.Fatalf("failing check: held %+v", held)
	}
	if err := k.OverrideDeletionCheck(later); err != nil {
		t.Fatal(err)
	}
	if del, held, _ := k.DeleteDue(); len(del) != 1 || del[0] != later || held != nil {
		t.Fatalf("override: deleted %v held %v", del, held)
	}
	if err := k.OverrideDeletionCheck(mustCreate(t, k, "enabled")); kms.ErrorCode(err) != kms.CodeInvalidState {
		t.Fatalf("override on an enabled key: %v", err)
	}
}

// TestDeletionWithoutGuard: no guard, AWS KMS's semantics as before: the
// key is gone at its date, before any sweep.
func TestDeletionWithoutGuard(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	k := open(t, Config{Dir: t.TempDir(), Now: clk.Now})
	id := mustCreate(t, k, "x")
	if _, err := k.ScheduleKeyDeletion(id, 7); err != nil {
		t.Fatal(err)
	}
	clk.Add(7 * 24 * time.Hour)
	if _, err := k.DescribeKey(context.Background(), id); kms.ErrorCode(err) != kms.CodeNotFound {
		t.Fatalf("at its date: %v", err)
	}
	if del, held, err := k.DeleteDue(); err != nil || len(del) != 1 || held != nil {
		t.Fatalf("DeleteDue: %v %v %v", del, held, err)
	}
}

func fileStat(t *testing.T, dir string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return fi
}
