package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/migrate"
)

// Progress is a bar when asked for (or on a terminal), log lines otherwise.
func TestMigrateProgress(t *testing.T) {
	results := []migrate.Result{
		{Source: "s3://a/1", Dest: "s3://b/1", Action: migrate.Copied, Mode: migrate.ModeStream, Bytes: 100, Duration: time.Millisecond},
		{Source: "s3://a/2", Dest: "s3://b/2", Action: migrate.Skipped, Mode: "already at the destination", Bytes: 100},
		{Source: "s3://a/3", Dest: "s3://b/3", Action: migrate.Failed, Reason: "source KMS key k: Decrypt failed: the key is disabled", Bytes: 100},
	}
	for _, mode := range []string{"always", "never"} {
		var buf bytes.Buffer
		o := &JobOptions{Progress: mode, errOut: &buf}
		ob := o.observer()
		ob.Planned(3, 300)
		ob.Moved(100)
		for _, r := range results {
			ob.Finished(r)
		}
		if mode == "always" {
			// Bytes of skipped and failed objects count as done, so the ETA
			// holds.
			if st := ob.bar.State(); st.Description != "3/3 objects, 1 failed" || st.CurrentNum != 300 || st.Max != 300 {
				t.Errorf("bar: %+v", st)
			}
		}
		ob.close()
		out := buf.String()
		switch mode {
		case "always":
			if !strings.Contains(out, "objects") {
				t.Errorf("bar: %q", out)
			}
		case "never":
			for _, want := range []string{"3 objects, 300 bytes", "[1/3] copied s3://a/1 -> s3://b/1 (" + migrate.ModeStream, "[3/3] failed s3://a/3 -> s3://b/3: source KMS key k"} {
				if !strings.Contains(out, want) {
					t.Errorf("log lines lack %q:\n%s", want, out)
				}
			}
		}
	}
	var buf bytes.Buffer
	o := &JobOptions{out: &buf}
	o.writeReport(&migrate.Report{Copied: 1, Skipped: 1, Failed: 1, Bytes: 100, Failures: results[2:], Seconds: 2}, false)
	if out := buf.String(); !strings.Contains(out, "copied 1 (100 bytes), skipped 1, failed 1 in 2s") || !strings.Contains(out, "failed: s3://a/3: source KMS key") {
		t.Errorf("report:\n%s", out)
	}
}
