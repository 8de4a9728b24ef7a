package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/s3seal/s3seal/internal/keyusage"
	"github.com/s3seal/s3seal/kms"
)

// KeysUsageCmd reports which KMS keys protect how many objects and bytes.
//
// It sits under keys because it answers the question every other keys
// command raises (what breaks if I disable, rotate or delete this key?),
// and because schedule-deletion reads the report it keeps in the data dir.
// It opens no keyring and no KMS: the key ids are in clear in the object
// headers, so it takes the store options (as inspect does) and works for
// any KMS backend, the embedded keyring, AWS KMS or another s3seal's.
type KeysUsageCmd struct {
	Targets []string `arg:"" name:"s3://bucket[/prefix]" help:"Buckets (or prefixes of them) to scan; several add up into one report."`

	UpstreamOptions `embed:"" envprefix:"S3SEAL_"`
	Workers         int    `default:"16" help:"Objects read at once (a HEAD each, and a 4 KiB ranged GET per part of a multipart object)."`
	Progress        string `enum:"auto,always,never" default:"auto" help:"Progress bar on standard error: auto (on a terminal, without --json), always, never."`
	Save            bool   `default:"true" negatable:"" help:"Keep the report in the data dir (key-usage.json) for schedule-deletion to check; --no-save does not."`

	k *KeysCmd
}

// parseTargets reads s3://bucket[/prefix] arguments.
func parseTargets(args []string) ([]keyusage.Target, error) {
	var targets []keyusage.Target
	for _, t := range args {
		rest, ok := strings.CutPrefix(t, "s3://")
		b, prefix, _ := strings.Cut(rest, "/")
		if !ok || b == "" {
			return nil, fmt.Errorf("%q: want s3://bucket or s3://bucket/prefix", t)
		}
		targets = append(targets, keyusage.Target{Bucket: b, Prefix: prefix})
	}
	return targets, nil
}

// usageFile is where the last report is kept, in the data dir beside the
// keyring it is about.
const usageFile = "key-usage.json"

func (c *KeysUsageCmd) Run() error {
	targets, err := parseTargets(c.Targets)
	if err != nil {
		return err
	}
	st, closeStore, err := c.storeOrEmbedded(c.k.DataDir)
	if err != nil {
		return err
	}
	defer closeStore()
	bar := c.progressBar()
	rep, err := keyusage.Run(context.Background(), keyusage.Config{Store: st, Targets: targets, Workers: c.Workers, Progress: bar})
	bar.finish()
	if err != nil {
		return err
	}
	if c.Save {
		c.save(rep)
	}
	if c.k.JSON {
		enc := json.NewEncoder(c.k.stdout())
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeUsage(c.k.stdout(), rep)
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d objects could not be read: the report is incomplete", len(rep.Failures))
	}
	return nil
}

func (c *KeysUsageCmd) stderr() io.Writer {
	if c.k.errOut != nil {
		return c.k.errOut
	}
	return os.Stderr
}

// save keeps the report in the data dir, when there is one: the keyring's
// commands look there.
func (c *KeysUsageCmd) save(rep *keyusage.Report) {
	if fi, err := os.Stat(c.k.DataDir); err != nil || !fi.IsDir() {
		fmt.Fprintf(c.stderr(), "report not kept: no data dir %s\n", c.k.DataDir)
		return
	}
	if err := keepUsage(c.k.DataDir, rep); err != nil {
		fmt.Fprintf(c.stderr(), "report not kept: %v\n", err)
	}
}

// keepUsage writes rep as dataDir's kept report.
func keepUsage(dataDir string, rep *keyusage.Report) error {
	b, _ := json.MarshalIndent(rep, "", "  ")
	path := filepath.Join(dataDir, usageFile)
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, append(b, '\n'), 0o600)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	return err
}

// loadUsage reads the report keys usage kept in dataDir; nil, nil if there
// is none.
func loadUsage(dataDir string) (*keyusage.Report, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, usageFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rep keyusage.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dataDir, usageFile), err)
	}
	return &rep, nil
}

func writeUsage(w io.Writer, rep *keyusage.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "OBJECTS\tPLAINTEXT BYTES\tSTORED BYTES\t KEY\t BUCKETS\t VERSIONS (objects)\t")
	sealed := 0 // objects counted under some key whose plaintext size is sealed
	for _, k := range rep.Keys {
		var vs []string
		for _, v := range k.Versions {
			vs = append(vs, fmt.Sprintf("v%d: %d", v.Version, v.Objects))
		}
		versions := strings.Join(vs, ", ")
		if versions == "" {
			versions = "-"
		}
		plain := fmt.Sprint(k.PlaintextBytes)
		if k.PlaintextSealed > 0 {
			plain += "+" // and the sealed sizes of compressed objects
			sealed += k.PlaintextSealed
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t %s\t %s\t %s\t\n", k.Objects, plain, k.StoredBytes, k.KeyID, strings.Join(k.Buckets, ","), versions)
	}
	tw.Flush()
	if sealed > 0 {
		fmt.Fprintf(w, "+: plaintext bytes leave out compressed objects, whose plaintext size is sealed (%d, counted under each of their keys; their stored bytes count)\n", sealed)
	}
	fmt.Fprintf(w, "%d objects in %s: %d sealed, %d not sealed (no key), %d unreadable\n",
		rep.Objects, strings.Join(rep.Scanned, " "), rep.Sealed, rep.Plain, len(rep.Failures))
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "unreadable: %s: %s\n", f.Object, f.Reason)
	}
}

// usageBar is the progress bar (the library migrate's uses), counting
// objects; a nil bar shows nothing.
type usageBar struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

func (c *KeysUsageCmd) progressBar() *usageBar {
	w := c.stderr()
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	if c.Progress == "always" || c.Progress == "auto" && tty && !c.k.JSON {
		return &usageBar{bar: progressbar.NewOptions(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("objects"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("objects"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
		)}
	}
	return &usageBar{}
}

func (b *usageBar) Listed(n int) {
	if b.bar != nil {
		b.mu.Lock()
		b.bar.ChangeMax(max(n, 1))
		b.mu.Unlock()
	}
}

func (b *usageBar) Scanned() {
	if b.bar != nil {
		_ = b.bar.Add(1)
	}
}

func (b *usageBar) finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
	}
}

// deletionCheck is what schedule-deletion does with the kept usage report:
// a key the report shows in use is refused unless force; no report, or an
// old one, is a warning. Deleting a key makes every object under it
// unrecoverable once the waiting period ends, and the keyring cannot know
// what the store holds: the report is the only evidence it has.
//
// forced reports that the deletion goes ahead only because of force.
func deletionCheck(dataDir string, md *kms.KeyMetadata, force bool, warn io.Writer, now time.Time) (forced bool, err error) {
	rep, err := loadUsage(dataDir)
	if err != nil {
		if force {
			fmt.Fprintf(warn, "warning: reading the key usage report: %v (--force given).\n", err)
			return true, nil
		}
		return false, fmt.Errorf("reading the key usage report: %w (pass --force to schedule the deletion anyway)", err)
	}
	if rep == nil {
		fmt.Fprintf(warn, "warning: no key usage report in %s: nothing says what %s protects. Run `s3seal keys usage s3://bucket ...` over every bucket first.\n", dataDir, md.KeyID)
		return false, nil
	}
	age := now.Sub(rep.Time)
	when := fmt.Sprintf("the key usage report of %s (%s ago, over %s)", rep.Time.Format(time.RFC3339), age.Round(time.Minute), strings.Join(rep.Scanned, " "))
	if age > 7*24*time.Hour {
		fmt.Fprintf(warn, "warning: %s is more than a week old; run `s3seal keys usage` again.\n", when)
	}
	u := rep.Key(md.KeyID)
	if u == nil && md.Arn != "" {
		u = rep.Key(md.Arn)
	}
	if u == nil || u.Objects == 0 {
		fmt.Fprintf(warn, "%s shows no object under %s.\n", when, md.KeyID)
		return false, nil
	}
	msg := fmt.Sprintf("%s protects %d objects (%d bytes of plaintext) in %s according to %s; once deleted they cannot be decrypted",
		md.KeyID, u.Objects, u.PlaintextBytes, strings.Join(u.Buckets, ", "), when)
	if !force {
		return false, fmt.Errorf("%s. Re-wrap them under another key first (s3seal rewrap s3://bucket --to KEY), or pass --force", msg)
	}
	fmt.Fprintf(warn, "warning: %s (--force given).\n", msg)
	return true, nil
}
