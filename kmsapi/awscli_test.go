package kmsapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/s3seal/s3seal/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs the aws cli (v1) against the KMS API as one identity, with a
// home, config and credentials of its own: nothing of the host's ~/.aws
// or AWS_* variables is used.
type cli struct {
	t        *testing.T
	bin      string // the aws cli of one major version (testenv.AWSCLIs)
	endpoint string
	env      []string
	dir      string
}

func (e *env) cli(t *testing.T, bin, ak string) *cli {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\noutput = json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var envv []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") || strings.HasPrefix(name, "BOTO_") || name == "HOME" {
			continue
		}
		envv = append(envv, kv)
	}
	envv = append(envv, "HOME="+dir, "AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_ACCESS_KEY_ID="+ak, "AWS_SECRET_ACCESS_KEY="+secretOf(ak), "AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1")
	return &cli{t: t, bin: bin, endpoint: e.url, env: envv, dir: dir}
}

// knows reports whether this cli has the kms subcommand op.
func (c *cli) knows(op string) bool {
	cmd := exec.Command(c.bin, "kms", op, "help")
	cmd.Env = append(c.env, "PAGER=cat", "MANPAGER=cat")
	return cmd.Run() == nil
}

// run runs `aws kms ARGS...` and returns its JSON output, or the error
// code the cli printed ("" on success).
func (c *cli) run(args ...string) (map[string]any, string) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--endpoint-url", c.endpoint, "kms"}, args...)...)
	cmd.Env = c.env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := stderr.String()
		if i := strings.Index(msg, "An error occurred ("); i >= 0 {
			rest := msg[i+len("An error occurred ("):]
			return nil, rest[:strings.Index(rest, ")")]
		}
		c.t.Fatalf("aws kms %v: %v\n%s", args, err, msg)
	}
	out := map[string]any{}
	if s := strings.TrimSpace(stdout.String()); s != "" {
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			c.t.Fatalf("aws kms %v: output %q: %v", args, s, err)
		}
	}
	return out, ""
}

func (c *cli) ok(args ...string) map[string]any {
	c.t.Helper()
	out, code := c.run(args...)
	if code != "" {
		c.t.Fatalf("aws kms %v: %s", args, code)
	}
	return out
}

func (c *cli) fails(want string, args ...string) {
	c.t.Helper()
	if _, code := c.run(args...); code != want {
		c.t.Fatalf("aws kms %v: got error %q, want %s", args, code, want)
	}
}

// file writes b to a file in the cli's dir and returns fileb://PATH.
func (c *cli) file(name string, b []byte) string {
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return "fileb://" + p
}

func field(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		mm, _ := v.(map[string]any)
		v = mm[p]
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func b64decode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAWSCLI runs a key's life through the aws cli (botocore), which
// parses every response and error itself.
// TestAWSCLI runs the key lifecycle with aws cli v1 and v2.
func TestAWSCLI(t *testing.T) {
	for _, v := range testenv.AWSCLIs(t) {
		t.Run(v.Name, func(t *testing.T) { testAWSCLI(t, v.Path) })
	}
}

func testAWSCLI(t *testing.T, bin string) {
	e := newEnv(t)
	a := e.cli(t, bin, admin)

	created := a.ok("create-key", "--description", "cli key", "--tags", "TagKey=team,TagValue=cli")
	id := field(created, "KeyMetadata", "KeyId")
	arn := field(created, "KeyMetadata", "Arn")
	if id == "" || field(created, "KeyMetadata", "KeyState") != "Enabled" || field(created, "KeyMetadata", "KeySpec") != "SYMMETRIC_DEFAULT" {
		t.Fatalf("create-key: %v", created)
	}
	other := field(a.ok("create-key"), "KeyMetadata", "KeyId")
	a.ok("create-alias", "--alias-name", "alias/cli", "--target-key-id", id)
	if d := a.ok("describe-key", "--key-id", "alias/cli"); field(d, "KeyMetadata", "Arn") != arn || field(d, "KeyMetadata", "Description") != "cli key" {
		t.Fatalf("describe-key: %v", d)
	}
	if l := a.ok("list-keys"); !strings.Contains(fmt.Sprint(l["Keys"]), id) || !strings.Contains(fmt.Sprint(l["Keys"]), other) {
		t.Fatalf("list-keys: %v", l)
	}
	if l := a.ok("list-aliases"); !strings.Contains(fmt.Sprint(l["Aliases"]), "alias/cli") {
		t.Fatalf("list-aliases: %v", l)
	}

	// Encrypt, decrypt; a data key decrypts; another key refuses it.
	enc := a.ok("encrypt", "--key-id", "alias/cli", "--plaintext", a.file("pt", []byte("hello from the cli")),
		"--encryption-context", "s3seal:bucket=photos")
	blob := a.file("ct", b64decode(t, field(enc, "CiphertextBlob")))
	dec := a.ok("decrypt", "--ciphertext-blob", blob, "--encryption-context", "s3seal:bucket=photos")
	if string(b64decode(t, field(dec, "Plaintext"))) != "hello from the cli" || field(dec, "KeyId") != arn {
		t.Fatalf("decrypt: %v", dec)
	}
	a.fails("InvalidCiphertextException", "decrypt", "--ciphertext-blob", blob)
	dk := a.ok("generate-data-key", "--key-id", id, "--key-spec", "AES_256")
	dkBlob := a.file("dk", b64decode(t, field(dk, "CiphertextBlob")))
	if dec := a.ok("decrypt", "--ciphertext-blob", dkBlob, "--key-id", id); field(dec, "Plaintext") != field(dk, "Plaintext") {
		t.Fatal("decrypt of a data key differs")
	}
	a.fails("IncorrectKeyException", "decrypt", "--ciphertext-blob", dkBlob, "--key-id", other)
	re := a.ok("re-encrypt", "--ciphertext-blob", dkBlob, "--destination-key-id", other)
	if dec := a.ok("decrypt", "--ciphertext-blob", a.file("re", b64decode(t, field(re, "CiphertextBlob")))); field(dec, "Plaintext") != field(dk, "Plaintext") {
		t.Fatal("re-encrypted data key differs")
	}
	if r := a.ok("generate-random", "--number-of-bytes", "16"); len(b64decode(t, field(r, "Plaintext"))) != 16 {
		t.Fatalf("generate-random: %v", r)
	}

	// Rotation. Rotation periods, on-demand rotation and the list of
	// rotations came to the KMS API in 2024: Debian's aws cli v2 (2.9)
	// predates them, and enables yearly rotation only.
	if a.knows("rotate-key-on-demand") {
		a.ok("enable-key-rotation", "--key-id", id, "--rotation-period-in-days", "90")
		if st := a.ok("get-key-rotation-status", "--key-id", id); field(st, "KeyRotationEnabled") != "true" || field(st, "RotationPeriodInDays") != "90" || field(st, "NextRotationDate") == "" {
			t.Fatalf("get-key-rotation-status: %v", st)
		}
		a.ok("rotate-key-on-demand", "--key-id", id)
		if l := a.ok("list-key-rotations", "--key-id", id); !strings.Contains(fmt.Sprint(l["Rotations"]), "ON_DEMAND") {
			t.Fatalf("list-key-rotations: %v", l)
		}
		a.ok("decrypt", "--ciphertext-blob", dkBlob) // made before the rotation
	} else {
		t.Logf("%s has no rotation periods or on-demand rotation: checking yearly rotation only", bin)
		a.ok("enable-key-rotation", "--key-id", id)
		if st := a.ok("get-key-rotation-status", "--key-id", id); field(st, "KeyRotationEnabled") != "true" {
			t.Fatalf("get-key-rotation-status: %v", st)
		}
	}

	// Policy, grants, tags.
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"},` +
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/` + reader + `"},"Action":"kms:Decrypt","Resource":"*"}]}`
	a.ok("put-key-policy", "--key-id", id, "--policy-name", "default", "--policy", pol)
	if p := a.ok("get-key-policy", "--key-id", id, "--policy-name", "default"); field(p, "Policy") != pol {
		t.Fatalf("get-key-policy: %v", p)
	}
	a.fails("MalformedPolicyDocumentException", "put-key-policy", "--key-id", id, "--policy-name", "default", "--policy", `{"Statement":"nope"}`)
	r := e.cli(t, bin, reader)
	r.ok("decrypt", "--ciphertext-blob", dkBlob)
	r.fails("AccessDeniedException", "generate-data-key", "--key-id", id, "--key-spec", "AES_256")
	r.fails("AccessDeniedException", "encrypt", "--key-id", id, "--plaintext", r.file("pt", []byte("x")))
	g := a.ok("create-grant", "--key-id", id, "--grantee-principal", "arn:aws:iam::000000000000:user/"+eve,
		"--operations", "GenerateDataKey", "--retiring-principal", "arn:aws:iam::000000000000:user/"+eve)
	ev := e.cli(t, bin, eve)
	ev.ok("generate-data-key", "--key-id", id, "--key-spec", "AES_256", "--grant-tokens", field(g, "GrantToken"))
	if l := a.ok("list-grants", "--key-id", id); !strings.Contains(fmt.Sprint(l["Grants"]), field(g, "GrantId")) {
		t.Fatalf("list-grants: %v", l)
	}
	ev.ok("retire-grant", "--grant-token", field(g, "GrantToken"))
	ev.fails("AccessDeniedException", "generate-data-key", "--key-id", id, "--key-spec", "AES_256")
	a.ok("tag-resource", "--key-id", id, "--tags", "TagKey=env,TagValue=ci")
	a.ok("untag-resource", "--key-id", id, "--tag-keys", "team")
	if l := a.ok("list-resource-tags", "--key-id", id); fmt.Sprint(l["Tags"]) != "[map[TagKey:env TagValue:ci]]" {
		t.Fatalf("list-resource-tags: %v", l)
	}

	// Disable, schedule deletion, cancel.
	a.ok("disable-key", "--key-id", id)
	a.fails("DisabledException", "decrypt", "--ciphertext-blob", dkBlob)
	a.ok("enable-key", "--key-id", id)
	a.fails("ValidationException", "schedule-key-deletion", "--key-id", id, "--pending-window-in-days", "31")
	sd := a.ok("schedule-key-deletion", "--key-id", id, "--pending-window-in-days", "7")
	if field(sd, "KeyState") != "PendingDeletion" || field(sd, "DeletionDate") == "" {
		t.Fatalf("schedule-key-deletion: %v", sd)
	}
	a.fails("KMSInvalidStateException", "generate-data-key", "--key-id", id, "--key-spec", "AES_256")
	a.ok("cancel-key-deletion", "--key-id", id)
	if d := a.ok("describe-key", "--key-id", id); field(d, "KeyMetadata", "KeyState") != "Disabled" {
		t.Fatalf("after cancel-key-deletion: %v", d)
	}
	a.ok("delete-alias", "--alias-name", "alias/cli")
	a.fails("NotFoundException", "describe-key", "--key-id", "alias/cli")
}
