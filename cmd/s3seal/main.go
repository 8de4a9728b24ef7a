// Command s3seal is a transparent encrypting S3 proxy: point unchanged S3
// clients at it and every object body reaches the store encrypted under
// keys you control.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type cli struct {
	Serve   ServeCmd         `cmd:"" help:"Run the proxy."`
	Health  HealthCmd        `cmd:"" help:"Probe a running proxy on this host (GET /healthz, or /readyz with --ready): exit 0 if it answers 200, else 1 (the container health check)."`
	Keys    KeysCmd          `cmd:"" help:"Manage the embedded keyring's keys (create, list, rotate, disable, schedule deletion, ...)."`
	KMS     KMSCmd           `cmd:"" name:"kms" help:"Serve the embedded keyring over the AWS KMS API (kms serve)."`
	Decrypt DecryptCmd       `cmd:"" help:"Decrypt an object straight from the store with the KMS, without a proxy (or show its envelope with --info)."`
	Inspect InspectCmd       `cmd:"" help:"Show an object's envelope as the store holds it (format, layout, KMS key, parts, sizes), with no key; --open also opens it with the key to show what it seals (plaintext size, compression ratio)."`
	Migrate MigrateCmd       `cmd:"" help:"Copy objects to another bucket, store, region or KMS key without decrypting them (their keys re-wrapped, their ciphertext copied)."`
	Rewrap  RewrapCmd        `cmd:"" help:"Re-wrap objects in place under another KMS key."`
	Version kong.VersionFlag `help:"Print the version and exit (as the version command)."`
	// VersionCmd is named so: the field name is the --version flag's.
	VersionCmd VersionCmd      `cmd:"" name:"version" help:"Print the version, the Go toolchain, and whether FIPS 140-3 mode is on and with which module."`
	Config     kong.ConfigFlag `env:"S3SEAL_CONFIG" help:"JSON file of option values, keyed by flag name with '-' as '_' (\"upstream\", \"bucket_keys\", \"allow_sigv2\", ...); an unknown key is an error; flags and environment variables win over it (${env})."`
}

// configFile is the --config file: option values keyed by flag name with
// '-' as '_' ("upstream_access_key", "allow_sigv2"). An option also set in
// the environment keeps the environment's value (flags > environment >
// file).
type configFile struct {
	name   string
	values map[string]any
}

// loadConfig reads the --config file. It stands in for kong.JSON, which
// also takes camel-case and nested spellings of a key and ignores a key it
// does not know. kong hands over the opened file, whose name the errors
// quote.
func loadConfig(r io.Reader) (kong.Resolver, error) {
	c := &configFile{name: "--config"}
	if f, ok := r.(interface{ Name() string }); ok {
		c.name = f.Name()
	}
	if err := json.NewDecoder(r).Decode(&c.values); err != nil {
		return nil, fmt.Errorf("config file %s: %w", c.name, err)
	}
	return c, nil
}

func configKey(f *kong.Flag) string { return strings.ReplaceAll(f.Name, "-", "_") }

// Validate rejects a key that is no option at all, so that a misspelt one
// is not silently ignored. One file serves every subcommand, so a key of
// another subcommand's option is fine.
func (c *configFile) Validate(app *kong.Application) error {
	known := map[string]bool{}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			known[configKey(f)] = true
		}
		for _, child := range n.Children {
			walk(child)
		}
	}
	walk(app.Node)
	var unknown []string
	for k := range c.values {
		if !known[k] {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	noun := "option"
	if len(unknown) > 1 {
		noun = "options"
	}
	return fmt.Errorf("config file %s: unknown %s %s", c.name, noun, strings.Join(unknown, ", "))
}

func (c *configFile) Resolve(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	for _, e := range flag.Envs {
		if _, set := os.LookupEnv(e); set {
			return nil, nil
		}
	}
	return c.values[configKey(flag)], nil
}

func main() {
	var c cli
	ctx := kong.Parse(&c, cliOptions()...)
	err := fipsCheckEnforced(ctx.Command())
	if err == nil {
		err = ctx.Run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3seal:", err)
		os.Exit(1)
	}
}

func cliOptions() []kong.Option {
	return []kong.Option{
		kong.Name("s3seal"),
		kong.Description("s3seal is a transparent encrypting S3 proxy. Clients sign requests to it as to S3; " +
			"it encrypts object bodies with envelope encryption (data keys from a KMS) before they reach the store, " +
			"and decrypts them on the way back."),
		kong.UsageOnError(),
		kong.Vars{"version": versionText(), "allow_sigv2_default": allowSigV2Default()},
		kong.Configuration(loadConfig),
	}
}
