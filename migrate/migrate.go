// Package migrate moves s3seal objects between buckets, stores, regions and
// KMS keys without decrypting them (FORMAT.md 11.10), and re-wraps objects
// in place under another KMS key.
//
// Per object: the object header's data key is unwrapped with the source KMS,
// a destination data key is made with the destination KMS (one per object;
// the caller's kms.Cache reuses it across objects), and the object key is
// resealed for the destination path. A single object's ciphertext is then
// copied unchanged: server-side when both sides are one store, else
// streamed through (GET, then PUT with its length). A multipart object's
// part headers are resealed one by one (same part keys, numbers and upload
// identity), its manifest recomputed over the new headers, and the object
// re-uploaded part by part with the same part sizes, each part being its new
// header followed by the source part's segments, byte for byte; the
// destination upload is created with the final header. Version 1 objects,
// and every object with ReencryptData, are decrypted and encrypted anew;
// objects s3seal did not write are encrypted on the way with
// EncryptPlaintext.
//
// Every destination object records in its sealed metadata (Meta.Source) the
// source version it was made from, so a re-run skips what is already done;
// a failed object leaves nothing at the destination (an aborted upload, or
// a PUT that never completed).
//
// The package does no CLI work: it reports through an Observer and returns
// a Report.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/s3seal/s3seal/internal/objstore"
	"github.com/s3seal/s3seal/kms"
)

// Side is one end of a migration: a store, a bucket and a key prefix, and
// the KMS that unwraps (source) or wraps (destination) its data keys.
type Side struct {
	Store  *objstore.Store
	Bucket string
	// Prefix selects the source's objects; at the destination it replaces
	// the source prefix in every key.
	Prefix string
	KMS    kms.Client
}

// Verify says what is checked at the destination after each copy.
type Verify int

const (
	// VerifyNone checks nothing beyond what the copy itself checks.
	VerifyNone Verify = iota
	// VerifyHeader opens the copied object with the destination KMS only:
	// its authenticated header, its sizes, and for a multipart object its
	// manifest against every part header, each part key opened.
	VerifyHeader
	// VerifyFull also decrypts every byte.
	VerifyFull
)

func (v Verify) String() string {
	return [...]string{"none", "header", "full"}[v]
}

// Config is one migration (or, with Rewrap, one rewrap).
type Config struct {
	Src, Dst Side
	// DstKeyID is the KMS key that wraps the destination's data keys (id,
	// ARN or alias).
	DstKeyID string
	// Rewrap re-wraps objects in place (Src and Dst are the same bucket and
	// prefix): an object whose header and parts are all under DstKeyID
	// already is skipped.
	Rewrap bool
	// EncryptPlaintext encrypts source objects s3seal did not write, as
	// the proxy would have; without it they fail.
	EncryptPlaintext bool
	// ReencryptData decrypts every object and encrypts it under fresh keys
	// (fresh object and part keys, a fresh upload identity) instead of
	// re-wrapping its keys.
	ReencryptData bool
	// Workers is how many objects move at once (default 4).
	Workers int
	// DryRun lists what would be done, and writes nothing.
	DryRun bool
	Verify Verify
	// Objects lists the source keys to migrate; nil lists Src.Prefix.
	Objects ObjectSource
	// Shard keeps only this run's share of the keys.
	Shard Shard
	// PlainPartSize is the part size objects encrypted with
	// EncryptPlaintext are uploaded in when they are larger than it
	// (default 64 MiB); smaller ones become single objects.
	PlainPartSize int64
	// Observer hears about progress; nil hears nothing.
	Observer Observer
	Log      *slog.Logger
	Now      func() time.Time
}

// Observer is told what a run does, from its workers' goroutines (it must
// be safe for concurrent use).
type Observer interface {
	// Planned: the run will look at objects objects of bytes stored bytes
	// (bytes is 0 when the source gives no sizes).
	Planned(objects int, bytes int64)
	// Moved: n more stored bytes reached the destination.
	Moved(n int64)
	// Finished: one object is done.
	Finished(r Result)
}

// Action is what happened to one object.
type Action string

const (
	Copied  Action = "copied"
	Skipped Action = "skipped"
	Failed  Action = "failed"
	// Planned: what a dry run would do.
	Planned Action = "planned"
)

// How a copied object was made.
const (
	ModeServerCopy   = "server-side copy, header re-wrapped"
	ModeStream       = "ciphertext streamed, header re-wrapped"
	ModeParts        = "parts re-wrapped, segments streamed unchanged"
	ModeReencrypt    = "decrypted and encrypted anew"
	ModeEncrypt      = "plaintext encrypted"
	ModeMetadataCopy = "metadata-only self-copy, header re-wrapped"
	// ModeKeptWrapped is appended to the mode of an object whose wrapped
	// data key was kept: the source's and the destination's KMS keys are
	// related multi-Region keys.
	ModeKeptWrapped = "; wrapped key kept (related multi-Region keys)"
	// ModeKeepWrapped is its dry-run form: the keys are related; whether
	// the destination can unwrap is checked when the object is copied.
	ModeKeepWrapped = "; wrapped key would be kept (related multi-Region keys)"
)

// Result is the outcome for one object.
type Result struct {
	Source string `json:"source"`
	Dest   string `json:"dest,omitempty"`
	Action Action `json:"action"`
	// Mode says how it was (or would be) copied, or why it was skipped.
	Mode string `json:"mode,omitempty"`
	// Bytes is the source's stored size.
	Bytes int64 `json:"bytes"`
	// Reason is why it failed.
	Reason   string        `json:"reason,omitempty"`
	Duration time.Duration `json:"-"`
}

// Report sums up a run.
type Report struct {
	Copied  int   `json:"copied"`
	Skipped int   `json:"skipped"`
	Failed  int   `json:"failed"`
	Planned int   `json:"planned,omitempty"`
	Bytes   int64 `json:"bytes_copied"`
	// KeptWrapped counts the copied objects whose wrapped data keys were
	// kept as they were, under a multi-Region key related to the
	// destination's (no KMS wrap for them).
	KeptWrapped int `json:"kept_wrapped_keys,omitempty"`
	// Failures lists every failed object with its reason; Objects every
	// object's result.
	Failures []Result  `json:"failures"`
	Objects  []Result  `json:"objects"`
	Started  time.Time `json:"started"`
	// Seconds is how long the run took.
	Seconds float64 `json:"seconds"`
}

// MaxListedObjects bounds how many results a Report keeps in Objects
// (failures are always kept).
const MaxListedObjects = 100_000

// ErrPreflight wraps a failure found before any object was touched.
var ErrPreflight = errors.New("migrate")

// Run migrates every selected object, Workers at a time. It returns an
// error only when the run could not start (ErrPreflight: a missing bucket,
// a destination key that cannot be used, an unreadable key list); failed
// objects are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	j, err := newJob(cfg)
	if err != nil {
		return nil, err
	}
	rep := &Report{Started: j.now()}
	if err := j.preflight(ctx); err != nil {
		return nil, err
	}
	objs, err := j.objects(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: listing the source: %v", ErrPreflight, err)
	}
	var total int64
	for _, o := range objs {
		total += o.Size
	}
	j.obs.Planned(len(objs), total)

	work := make(chan Listed)
	results := make(chan Result)
	var wg sync.WaitGroup
	for range j.cfg.Workers {
		wg.Go(func() {
			for o := range work {
				start := time.Now()
				r := j.one(ctx, o.Key)
				r.Duration = time.Since(start)
				j.obs.Finished(r)
				results <- r
			}
		})
	}
	go func() {
		defer close(work)
		for _, o := range objs {
			select {
			case work <- o:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	for r := range results {
		switch r.Action {
		case Copied:
			rep.Copied++
			rep.Bytes += r.Bytes
			if strings.HasSuffix(r.Mode, ModeKeptWrapped) {
				rep.KeptWrapped++
			}
		case Skipped:
			rep.Skipped++
		case Planned:
			rep.Planned++
		case Failed:
			rep.Failed++
			rep.Failures = append(rep.Failures, r)
		}
		if len(rep.Objects) < MaxListedObjects {
			rep.Objects = append(rep.Objects, r)
		}
	}
	sort.Slice(rep.Objects, func(a, b int) bool { return rep.Objects[a].Source < rep.Objects[b].Source })
	sort.Slice(rep.Failures, func(a, b int) bool { return rep.Failures[a].Source < rep.Failures[b].Source })
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.Seconds = j.now().Sub(rep.Started).Seconds()
	return rep, nil
}

type job struct {
	cfg      Config
	obs      Observer
	log      *slog.Logger
	now      func() time.Time
	started  time.Time
	sameSide bool // server-side copies possible

	targetOnce sync.Once // the key id rewrap compares headers with
	target     string
	targetErr  error
}

func newJob(cfg Config) (*job, error) {
	if cfg.Src.Store == nil || cfg.Dst.Store == nil || cfg.Src.KMS == nil || cfg.Dst.KMS == nil {
		return nil, fmt.Errorf("%w: source and destination need a store and a KMS", ErrPreflight)
	}
	if cfg.Src.Bucket == "" || cfg.Dst.Bucket == "" {
		return nil, fmt.Errorf("%w: source and destination need a bucket", ErrPreflight)
	}
	if cfg.DstKeyID == "" {
		return nil, fmt.Errorf("%w: no destination KMS key", ErrPreflight)
	}
	if !cfg.Rewrap && cfg.Src.Store.ID == cfg.Dst.Store.ID && cfg.Src.Bucket == cfg.Dst.Bucket &&
		(strings.HasPrefix(cfg.Src.Prefix, cfg.Dst.Prefix) || strings.HasPrefix(cfg.Dst.Prefix, cfg.Src.Prefix)) {
		return nil, fmt.Errorf("%w: source s3://%s/%s and destination s3://%s/%s overlap (use rewrap to re-wrap in place)",
			ErrPreflight, cfg.Src.Bucket, cfg.Src.Prefix, cfg.Dst.Bucket, cfg.Dst.Prefix)
	}
	if err := cfg.Shard.valid(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPreflight, err)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.PlainPartSize <= 0 {
		cfg.PlainPartSize = 64 << 20
	}
	j := &job{cfg: cfg, obs: cfg.Observer, log: cfg.Log, now: cfg.Now}
	if j.obs == nil {
		j.obs = nopObserver{}
	}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	if j.now == nil {
		j.now = time.Now
	}
	j.started = j.now()
	j.sameSide = cfg.Src.Store.ID == cfg.Dst.Store.ID
	return j, nil
}

type nopObserver struct{}

func (nopObserver) Planned(int, int64) {}
func (nopObserver) Moved(int64)        {}
func (nopObserver) Finished(Result)    {}

// preflight checks what would make every object fail, before any is
// touched: both buckets exist, and the destination key makes data keys.
func (j *job) preflight(ctx context.Context) error {
	for _, s := range []struct {
		what string
		side Side
	}{{"source", j.cfg.Src}, {"destination", j.cfg.Dst}} {
		if _, err := s.side.Store.S3.HeadBucket(ctx, headBucket(s.side.Bucket)); err != nil {
			if objstore.IsNotFound(err) {
				return fmt.Errorf("%w: %s bucket %q does not exist (create it first)", ErrPreflight, s.what, s.side.Bucket)
			}
			return fmt.Errorf("%w: %s bucket %q: %v", ErrPreflight, s.what, s.side.Bucket, err)
		}
	}
	dk, err := j.cfg.Dst.KMS.GenerateDataKey(ctx, j.cfg.DstKeyID, kms.BucketContext(j.cfg.Dst.Bucket))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPreflight, kmsProblem("destination", j.cfg.DstKeyID, "GenerateDataKey", err))
	}
	kms.Zero(dk.Plaintext)
	return nil
}

// kmsProblem explains a KMS failure in terms a user can act on.
func kmsProblem(side, keyID, op string, err error) error {
	hint := ""
	switch kms.ErrorCode(err) {
	case kms.CodeDisabled:
		hint = ": the key is disabled; enable it"
	case kms.CodeInvalidState:
		hint = ": the key is pending deletion or otherwise unusable; cancel its deletion and enable it"
	case kms.CodeNotFound:
		hint = ": no such key in this KMS and region (check the key id, the region and the endpoint)"
	case kms.CodeAccessDenied:
		hint = fmt.Sprintf(": the %s credentials may not call kms:%s on this key", side, op)
	case kms.CodeInvalidCiphertext, kms.CodeIncorrectKey:
		hint = ": this KMS cannot unwrap the data key (another KMS, region or account wrapped it, or the encryption context differs)"
	}
	return fmt.Errorf("%s KMS key %s: %s failed%s (%w)", side, keyID, op, hint, err)
}
