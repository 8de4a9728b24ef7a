// Package keyusage reports which KMS keys (and key versions) protect how
// many objects and bytes in one or more buckets, from object headers alone,
// so that an operator knows what disabling or deleting a key would break.
//
// It needs the store's credentials only, no KMS: every key id is in clear
// in the envelope headers (FORMAT.md 3 and 5). Per object it reads the
// listing entry and a HEAD (the object header), and for a multipart object
// every part header (one 4 KiB ranged GET per part): a part may be wrapped
// under another key than its object header (a copy of a multipart object
// keeps its parts' data keys), and reading the object needs every one of
// them. An object counts once for each distinct key any of its headers
// names.
//
// Bytes: stored bytes are the listing's sizes, exact for every object (what
// the store bills). Plaintext bytes are what the objects hold for their
// users: for an uncompressed object computed from the stored size (FORMAT.md
// 4 and 5), for a multipart object whose parts may be compressed the sum of
// its part headers' plaintext lengths (P, in clear: FORMAT.md 12.2.3), read
// anyway for their keys. A compressed single object's plaintext size is
// only in its sealed metadata, which a scan without a KMS cannot open: it
// is left out of the plaintext bytes and counted apart (PlaintextSealed).
package keyusage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/objstore"
	"github.com/s3seal/s3seal/kms/keyring"
)

// Target is one bucket, or the objects under a prefix of it.
type Target struct {
	Bucket, Prefix string
}

func (t Target) String() string { return "s3://" + t.Bucket + "/" + t.Prefix }

// Progress hears how a scan goes, from several goroutines.
type Progress interface {
	// Listed: the scan will read objects objects.
	Listed(objects int)
	// Scanned: one more object was read.
	Scanned()
}

// Config is one scan.
type Config struct {
	Store   *objstore.Store
	Targets []Target
	// Workers is how many objects are read at once (default 16).
	Workers  int
	Progress Progress
	Now      func() time.Time
}

// Report is the result of a scan (and the JSON that keys usage prints and
// keeps for schedule-deletion).
type Report struct {
	Time    time.Time `json:"time"`
	Scanned []string  `json:"scanned"`
	// Objects counts every listed object; Sealed those s3seal wrote,
	// Plain the others (no key protects them).
	Objects int `json:"objects"`
	Sealed  int `json:"sealed"`
	Plain   int `json:"not_sealed"`
	// Failures lists objects whose headers could not be read: the report
	// says nothing of their keys.
	Failures []Failure `json:"failures"`
	// Keys lists every key any header names, by key id as the headers
	// carry it (an ARN for AWS KMS, the canonical id for the embedded
	// keyring).
	Keys []KeyUsage `json:"keys"`
}

// Failure is an object the scan could not read.
type Failure struct {
	Object string `json:"object"`
	Reason string `json:"reason"`
}

// KeyUsage is what one key protects: the objects any of whose headers
// (object or part) it wrapped a data key of.
type KeyUsage struct {
	KeyID   string `json:"key_id"`
	Objects int    `json:"objects"`
	// PlaintextBytes is the objects' plaintext size as listings show it
	// (computed from the stored size, FORMAT.md 4 and 5, or from the part
	// headers of a multipart object whose parts may be compressed), but
	// for the PlaintextSealed objects, whose size is sealed; StoredBytes
	// their size at the store, for every object.
	PlaintextBytes int64 `json:"plaintext_bytes"`
	StoredBytes    int64 `json:"stored_bytes"`
	// PlaintextSealed counts the compressed single objects (FORMAT.md
	// 12.2) that PlaintextBytes leaves out: their plaintext size is in
	// their sealed metadata only, and the scan opens nothing.
	PlaintextSealed int      `json:"plaintext_sealed_objects,omitempty"`
	Buckets         []string `json:"buckets"`
	// Versions splits the objects by key material version when the
	// wrapped keys say it (the embedded keyring's do): an object counts
	// under every version one of its headers was wrapped with.
	Versions []VersionUsage `json:"versions,omitempty"`
}

// VersionUsage is what one key material version protects.
type VersionUsage struct {
	Version uint32 `json:"version"`
	Objects int    `json:"objects"`
}

// Key returns the usage of keyID, or nil if no scanned object names it.
func (r *Report) Key(keyID string) *KeyUsage {
	for i := range r.Keys {
		if r.Keys[i].KeyID == keyID {
			return &r.Keys[i]
		}
	}
	return nil
}

type item struct {
	bucket string
	obj    objstore.Listed
}

// Run scans every target. It returns an error when a listing fails (the
// report would be incomplete); objects that cannot be read are in
// Report.Failures.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Store == nil || len(cfg.Targets) == 0 {
		return nil, errors.New("keyusage: a store and at least one bucket are needed")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	rep := &Report{Time: cfg.Now().UTC(), Failures: []Failure{}, Keys: []KeyUsage{}}
	var items []item
	for _, t := range cfg.Targets {
		rep.Scanned = append(rep.Scanned, t.String())
		l := cfg.Store.List(t.Bucket, t.Prefix)
		for {
			page, err := l.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", t, err)
			}
			for _, o := range page {
				items = append(items, item{t.Bucket, o})
			}
		}
	}
	if cfg.Progress != nil {
		cfg.Progress.Listed(len(items))
	}
	rep.Objects = len(items)

	agg := newAggregate()
	work := make(chan item)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for it := range work {
				keys, plain, err := objectKeys(ctx, cfg.Store, it)
				agg.add(it, keys, plain, err)
				if cfg.Progress != nil {
					cfg.Progress.Scanned()
				}
			}
		})
	}
	for _, it := range items {
		select {
		case work <- it:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	agg.into(rep)
	return rep, nil
}

// keyVersion is one key (and version, when its blobs say) a header names;
// version 0 means not known.
type keyVersion struct {
	key     string
	version uint32
}

// objectKeys returns the keys the object's headers name (nil for an object
// s3seal did not write) and its plaintext size: from the listing's stored
// size, or from the part headers of a multipart object whose parts may be
// compressed; -1 for a compressed single object, whose size is sealed.
func objectKeys(ctx context.Context, st *objstore.Store, it item) (map[keyVersion]bool, int64, error) {
	o, err := st.Head(ctx, it.bucket, it.obj.Key)
	if err != nil {
		return nil, 0, fmt.Errorf("HEAD: %w", err)
	}
	if !o.Sealed() {
		return nil, 0, nil
	}
	h, err := envelope.ParseHeader(o.HeaderValue)
	if err != nil {
		return nil, 0, fmt.Errorf("object header: %w", err)
	}
	plain, ok := envelope.ListedSize(it.obj.Size, it.obj.ETag)
	if !ok {
		plain = 0
	}
	compressed := h.Flags()&envelope.FlagCompressed != 0
	if compressed && h.Layout() == envelope.LayoutSingle {
		plain = -1
	}
	keys := map[keyVersion]bool{named(h.KeyInfo()): true}
	if h.Layout() == envelope.LayoutMultipart {
		pm, parts, err := st.PartHeaders(ctx, o)
		if err != nil {
			return nil, 0, fmt.Errorf("part headers: %w", err)
		}
		for _, ph := range parts {
			keys[named(ph.KeyInfo())] = true
		}
		if compressed {
			// The stored size does not give it (FORMAT.md 12.2.3); the
			// parts' plaintext lengths, in clear, add up to it. Not
			// authenticated (nothing here is): the sealed manifest's
			// size is what readers check.
			plain = pm.Size()
		}
	}
	return keys, plain, nil
}

// named is the key (and version) a header's wrapped key is under.
func named(ki envelope.KeyInfo) keyVersion {
	kv := keyVersion{key: ki.KeyID}
	if id, v, ok := keyring.WrappedKeyVersion(ki.Wrapped); ok && id == ki.KeyID {
		kv.version = v
	}
	return kv
}

type usage struct {
	objects       int
	plain, stored int64
	sealedSize    int // objects whose plaintext size is sealed
	buckets       map[string]bool
	byVersion     map[uint32]int
}

type aggregate struct {
	mu       sync.Mutex
	keys     map[string]*usage
	sealed   int
	plain    int
	failures []Failure
}

func newAggregate() *aggregate { return &aggregate{keys: map[string]*usage{}} }

func (a *aggregate) add(it item, keys map[keyVersion]bool, plain int64, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := "s3://" + it.bucket + "/" + it.obj.Key
	switch {
	case err != nil:
		a.failures = append(a.failures, Failure{Object: name, Reason: err.Error()})
		return
	case keys == nil:
		a.plain++
		return
	}
	a.sealed++
	counted := map[string]bool{}
	for kv := range keys {
		u := a.keys[kv.key]
		if u == nil {
			u = &usage{buckets: map[string]bool{}, byVersion: map[uint32]int{}}
			a.keys[kv.key] = u
		}
		if !counted[kv.key] {
			counted[kv.key] = true
			if plain < 0 {
				u.sealedSize++
			} else {
				u.plain += plain
			}
			u.stored += it.obj.Size
			u.buckets[it.bucket] = true
			u.objects++
		}
		if kv.version != 0 {
			u.byVersion[kv.version]++
		}
	}
}

func (a *aggregate) into(rep *Report) {
	rep.Sealed, rep.Plain = a.sealed, a.plain
	rep.Failures = append(rep.Failures, a.failures...)
	sort.Slice(rep.Failures, func(i, j int) bool { return rep.Failures[i].Object < rep.Failures[j].Object })
	for id, u := range a.keys {
		ku := KeyUsage{KeyID: id, Objects: u.objects, PlaintextBytes: u.plain, StoredBytes: u.stored,
			PlaintextSealed: u.sealedSize, Buckets: []string{}}
		for b := range u.buckets {
			ku.Buckets = append(ku.Buckets, b)
		}
		sort.Strings(ku.Buckets)
		for v, n := range u.byVersion {
			ku.Versions = append(ku.Versions, VersionUsage{Version: v, Objects: n})
		}
		sort.Slice(ku.Versions, func(i, j int) bool { return ku.Versions[i].Version < ku.Versions[j].Version })
		rep.Keys = append(rep.Keys, ku)
	}
	sort.Slice(rep.Keys, func(i, j int) bool { return rep.Keys[i].KeyID < rep.Keys[j].KeyID })
}
