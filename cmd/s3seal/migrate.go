package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/migrate"
)

// MigrateCmd copies s3seal objects to another bucket, store, region or KMS
// key without decrypting them: each side is serve's options with a src- or
// dst- prefix.
type MigrateCmd struct {
	Src string `arg:"" help:"Source, s3://bucket[/prefix]."`
	Dst string `arg:"" help:"Destination, s3://bucket[/prefix]; the source prefix is replaced by this one in every key."`

	SrcUpstream UpstreamOptions `embed:"" prefix:"src-" envprefix:"S3SEAL_SRC_" group:"Source"`
	SrcKMS      KMSOptions      `embed:"" prefix:"src-" envprefix:"S3SEAL_SRC_" group:"Source"`
	SrcKeyring  KeyringOptions  `embed:"" prefix:"src-" envprefix:"S3SEAL_SRC_" group:"Source"`

	DstUpstream UpstreamOptions `embed:"" prefix:"dst-" envprefix:"S3SEAL_DST_" group:"Destination"`
	DstKMS      KMSOptions      `embed:"" prefix:"dst-" envprefix:"S3SEAL_DST_" group:"Destination"`
	DstKeyring  KeyringOptions  `embed:"" prefix:"dst-" envprefix:"S3SEAL_DST_" group:"Destination"`
	DstKey      KeyOptions      `embed:"" prefix:"dst-" envprefix:"S3SEAL_DST_" group:"Destination"`

	EncryptPlaintext bool `help:"Encrypt source objects s3seal did not write on the way, as the proxy would (without it they fail)."`
	ReencryptData    bool `help:"Decrypt every object and encrypt it under fresh keys, instead of re-wrapping its keys and copying its ciphertext."`

	JobOptions `embed:""`
}

// JobOptions are the run options migrate and rewrap share.
type JobOptions struct {
	Workers   int        `default:"4" help:"Objects moved at once."`
	DryRun    bool       `help:"Show what would be done; write nothing."`
	Verify    verifyFlag `help:"After each copy, open the object at the destination with the destination KMS alone: --verify checks its authenticated header, sizes and parts' keys and manifest, --verify=full also decrypts every byte."`
	Keys      string     `help:"Migrate only the keys listed in this file, one per line ('-': standard input), instead of listing the source." type:"path"`
	Inventory string     `help:"Migrate the objects of an S3 Inventory report (CSV): its manifest.json, as s3://bucket/key on the source store or a local file."`
	Shard     string     `help:"Take only shard K of N (K/N, 0 ≤ K < N): the keys whose hash modulo N is K, so that N processes share one run."`
	JSON      bool       `name:"json" help:"Print the final report as JSON on standard output."`
	Progress  string     `enum:"auto,always,never" default:"auto" help:"Progress bar on standard error: auto (when it is a terminal), always, never (log lines instead)."`

	out, errOut io.Writer // nil: os.Stdout, os.Stderr
}

// verifyFlag is --verify (header) or --verify=full.
type verifyFlag struct{ v migrate.Verify }

func (f *verifyFlag) Decode(ctx *kong.DecodeContext) error {
	if ctx.Scan.Peek().Type != kong.FlagValueToken {
		f.v = migrate.VerifyHeader
		return nil
	}
	token, err := ctx.Scan.PopValue("verify")
	if err != nil {
		return err
	}
	switch v := strings.ToLower(fmt.Sprint(token.Value)); v {
	case "true", "header", "1", "yes":
		f.v = migrate.VerifyHeader
	case "full":
		f.v = migrate.VerifyFull
	case "false", "none", "0", "no", "":
		f.v = migrate.VerifyNone
	default:
		return fmt.Errorf("--verify=%s: want header or full", v)
	}
	return nil
}

func (f *verifyFlag) IsBool() bool { return true }

// parseBucketURL splits s3://bucket[/prefix].
func parseBucketURL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	bucket, prefix, _ = strings.Cut(rest, "/")
	if !ok || bucket == "" {
		return "", "", fmt.Errorf("%q: want s3://bucket[/prefix]", u)
	}
	return bucket, prefix, nil
}

// Validate requires both stores' URLs.
func (c *MigrateCmd) Validate() error {
	if c.SrcUpstream.Upstream == "" {
		return errors.New("missing flag --src-upstream or S3SEAL_SRC_UPSTREAM: the store to migrate from")
	}
	if c.DstUpstream.Upstream == "" {
		return errors.New("missing flag --dst-upstream or S3SEAL_DST_UPSTREAM: the store to migrate to")
	}
	return nil
}

// kmsStack opens a side's KMS with the wrappers serve uses: retries with
// backoff, and a cache that reuses each data key for many objects and
// unwraps each wrapped key once. flag is the prefix of the side's flags.
func kmsStack(ctx context.Context, o KMSOptions, k KeyringOptions, flag string, shared map[string]kms.Client) (kms.Client, error) {
	// Two sides share one client only if they are one KMS seen with the
	// same credentials.
	id := strings.Join([]string{o.KMS, o.KMSRegion, o.KMSEndpoint, o.KMSAccessKey, o.KMSSecretKey, o.KMSSessionToken, o.KMSProfile}, "\x00")
	if o.KMS == "local" {
		dir, _ := filepath.Abs(k.DataDir)
		id = "local\x00" + dir
	}
	if c, ok := shared[id]; ok {
		return c, nil // one keyring file opened once
	}
	var krCfg keyring.Config
	if o.KMS == "local" {
		var err error
		if krCfg, _, err = k.keyringConfig(); err != nil {
			return nil, err
		}
	}
	backend, err := openKMS(ctx, o, flag, krCfg)
	if err != nil {
		return nil, err
	}
	c := kms.Client(kms.NewCache(kms.NewRetry(backend, kms.RetryConfig{}), kms.DefaultCacheConfig()))
	shared[id] = c
	return c, nil
}

func (c *MigrateCmd) Run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sb, sp, err := parseBucketURL(c.Src)
	if err != nil {
		return err
	}
	db, dp, err := parseBucketURL(c.Dst)
	if err != nil {
		return err
	}
	shared := map[string]kms.Client{}
	srcKMS, err := kmsStack(ctx, c.SrcKMS, c.SrcKeyring, "src-", shared)
	if err != nil {
		return fmt.Errorf("source KMS: %w", err)
	}
	dstKMS, err := kmsStack(ctx, c.DstKMS, c.DstKeyring, "dst-", shared)
	if err != nil {
		return fmt.Errorf("destination KMS: %w", err)
	}
	key, err := c.DstKey.keyFor(db)
	if err != nil {
		return err
	}
	srcStore, err := c.SrcUpstream.store()
	if err != nil {
		return fmt.Errorf("source store: %w", err)
	}
	dstStore, err := c.DstUpstream.store()
	if err != nil {
		return fmt.Errorf("destination store: %w", err)
	}
	cfg := migrate.Config{
		Src:              migrate.Side{Store: srcStore, Bucket: sb, Prefix: sp, KMS: srcKMS},
		Dst:              migrate.Side{Store: dstStore, Bucket: db, Prefix: dp, KMS: dstKMS},
		DstKeyID:         key,
		EncryptPlaintext: c.EncryptPlaintext,
		ReencryptData:    c.ReencryptData,
	}
	return c.JobOptions.run(ctx, cfg)
}

// RewrapCmd re-wraps objects in place under another KMS key.
type RewrapCmd struct {
	Target string `arg:"" help:"The objects, s3://bucket[/prefix]."`
	To     string `required:"" help:"The KMS key (id, ARN or alias) to re-wrap every object's data keys under."`

	UpstreamOptions `embed:"" envprefix:"S3SEAL_"`
	KMSOptions      `embed:"" envprefix:"S3SEAL_"`
	KeyringOptions  `embed:"" envprefix:"S3SEAL_"`

	JobOptions `embed:""`
}

func (c *RewrapCmd) Run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, p, err := parseBucketURL(c.Target)
	if err != nil {
		return err
	}
	client, err := kmsStack(ctx, c.KMSOptions, c.KeyringOptions, "", map[string]kms.Client{})
	if err != nil {
		return err
	}
	st, closeStore, err := c.storeOrEmbedded(c.DataDir)
	if err != nil {
		return err
	}
	defer closeStore()
	side := migrate.Side{Store: st, Bucket: b, Prefix: p, KMS: client}
	return c.JobOptions.run(ctx, migrate.Config{Src: side, Dst: side, DstKeyID: c.To, Rewrap: true})
}

func (o *JobOptions) stdout() io.Writer {
	if o.out != nil {
		return o.out
	}
	return os.Stdout
}

func (o *JobOptions) stderr() io.Writer {
	if o.errOut != nil {
		return o.errOut
	}
	return os.Stderr
}

// run runs a migration or rewrap with the shared options and reports it;
// it fails when any object failed.
func (o *JobOptions) run(ctx context.Context, cfg migrate.Config) error {
	cfg.Workers, cfg.DryRun, cfg.Verify = o.Workers, o.DryRun, o.Verify.v
	if o.Shard != "" {
		sh, err := migrate.ParseShard(o.Shard)
		if err != nil {
			return err
		}
		cfg.Shard = sh
	}
	objs, err := o.objectSource(ctx, cfg)
	if err != nil {
		return err
	}
	cfg.Objects = objs
	log := slog.New(slog.NewTextHandler(o.stderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Log = log
	obs := o.observer()
	cfg.Observer = obs
	rep, err := migrate.Run(ctx, cfg)
	obs.close()
	if err != nil && rep == nil {
		return err
	}
	if o.JSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(o.stdout(), string(b))
	} else {
		o.writeReport(rep, cfg.DryRun)
	}
	if err != nil {
		return err
	}
	if rep.Failed > 0 {
		return fmt.Errorf("%d of %d objects failed", rep.Failed, rep.Copied+rep.Skipped+rep.Failed+rep.Planned)
	}
	return nil
}

func (o *JobOptions) objectSource(ctx context.Context, cfg migrate.Config) (migrate.ObjectSource, error) {
	switch {
	case o.Keys != "" && o.Inventory != "":
		return nil, errors.New("--keys and --inventory: give one")
	case o.Keys == "-":
		return migrate.KeyList{R: os.Stdin}, nil
	case o.Keys != "":
		f, err := os.Open(o.Keys)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		keys, err := migrate.KeyList{R: f}.Objects(ctx)
		if err != nil {
			return nil, fmt.Errorf("--keys %s: %w", o.Keys, err)
		}
		return listed(keys), nil
	case strings.HasPrefix(o.Inventory, "s3://"):
		b, k, err := parseObjectURL(o.Inventory)
		if err != nil {
			return nil, err
		}
		return migrate.StoreInventory(ctx, cfg.Src.Store, b, k, cfg.Src.Bucket)
	case o.Inventory != "":
		manifest, err := os.ReadFile(o.Inventory)
		if err != nil {
			return nil, err
		}
		dir := filepath.Dir(o.Inventory)
		return migrate.Inventory{Manifest: manifest, Bucket: cfg.Src.Bucket, Open: func(_ context.Context, key string) (io.ReadCloser, error) {
			// A copy of the report on disk: the data files beside the
			// manifest, or in the data/ folder S3 Inventory writes them to.
			f, err := os.Open(filepath.Join(dir, filepath.Base(key)))
			if err != nil {
				f, err = os.Open(filepath.Join(dir, "..", "data", filepath.Base(key)))
			}
			return f, err
		}}, nil
	}
	return nil, nil
}

type listed []migrate.Listed

func (l listed) Objects(context.Context) ([]migrate.Listed, error) { return l, nil }

// observer shows progress: a bar on a terminal, log lines otherwise.
type observer struct {
	mu     sync.Mutex
	w      io.Writer
	bar    *progressbar.ProgressBar
	total  int
	done   int
	failed int
}

func (o *JobOptions) observer() *observer {
	ob := &observer{w: o.stderr()}
	tty := false
	if f, ok := ob.w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	if o.Progress == "always" || o.Progress == "auto" && tty && !o.JSON {
		ob.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(ob.w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
		)
	}
	return ob
}

func (ob *observer) Planned(objects int, bytes int64) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	ob.total = objects
	if ob.bar != nil {
		ob.bar.ChangeMax64(max(bytes, 1))
		ob.bar.Describe(fmt.Sprintf("0/%d objects", objects))
		return
	}
	fmt.Fprintf(ob.w, "%d objects, %d bytes\n", objects, bytes)
}

func (ob *observer) Moved(n int64) {
	if ob.bar != nil {
		_ = ob.bar.Add64(n)
	}
}

func (ob *observer) Finished(r migrate.Result) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	ob.done++
	if r.Action == migrate.Failed {
		ob.failed++
	}
	if ob.bar != nil {
		if r.Action != migrate.Copied {
			_ = ob.bar.Add64(r.Bytes) // counted as done, so the ETA stays true
		}
		desc := fmt.Sprintf("%d/%d objects", ob.done, ob.total)
		if ob.failed > 0 {
			desc += fmt.Sprintf(", %d failed", ob.failed)
		}
		ob.bar.Describe(desc)
		return
	}
	line := fmt.Sprintf("[%d/%d] %s %s", ob.done, ob.total, r.Action, r.Source)
	if r.Dest != "" && r.Dest != r.Source {
		line += " -> " + r.Dest
	}
	switch {
	case r.Reason != "":
		line += ": " + r.Reason
	case r.Mode != "":
		line += fmt.Sprintf(" (%s, %d bytes, %s)", r.Mode, r.Bytes, r.Duration.Round(time.Millisecond))
	}
	fmt.Fprintln(ob.w, line)
}

func (ob *observer) close() {
	if ob.bar != nil {
		_ = ob.bar.Finish()
	}
}

func (o *JobOptions) writeReport(rep *migrate.Report, dry bool) {
	w := o.stdout()
	el := time.Duration(rep.Seconds * float64(time.Second))
	if dry {
		fmt.Fprintf(w, "dry run: %d objects to copy, %d skipped, %d failed\n", rep.Planned, rep.Skipped, rep.Failed)
	} else {
		rate := ""
		if s := el.Seconds(); s > 0 {
			rate = fmt.Sprintf(", %.1f MB/s", float64(rep.Bytes)/s/1e6)
		}
		fmt.Fprintf(w, "copied %d (%d bytes), skipped %d, failed %d in %s%s\n",
			rep.Copied, rep.Bytes, rep.Skipped, rep.Failed, el.Round(time.Millisecond), rate)
		if rep.KeptWrapped > 0 {
			fmt.Fprintf(w, "%d of them kept their wrapped data keys: the source and destination keys are related multi-Region keys (no re-wrap)\n", rep.KeptWrapped)
		}
	}
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "failed: %s: %s\n", f.Source, f.Reason)
	}
}
