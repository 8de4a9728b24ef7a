// Command s3seal is a transparent encrypting S3 proxy: point unchanged S3
// clients at it and every object body reaches the store encrypted under
// keys you control.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type cli struct {
	Serve   ServeCmd         `cmd:"" help:"Run the proxy."`
	Keys    KeysCmd          `cmd:"" help:"Manage the embedded keyring's keys (create, list, rotate, disable, schedule deletion, ...)."`
	Decrypt DecryptCmd       `cmd:"" help:"Decrypt an object straight from the store with the KMS, without a proxy (or show its envelope with --info)."`
	Version kong.VersionFlag `help:"Print the version and exit."`
	Config  kong.ConfigFlag  `env:"S3SEAL_CONFIG" help:"JSON file of option values, keyed by flag name in snake case (\"upstream\", \"bucket_keys\", ...); flags and environment variables win over it (${env})."`
}

// jsonUnderEnv reads the --config file; an option also set in the
// environment keeps the environment's value (flags > environment > file).
func jsonUnderEnv(r io.Reader) (kong.Resolver, error) {
	file, err := kong.JSON(r)
	if err != nil {
		return nil, err
	}
	return kong.ResolverFunc(func(ctx *kong.Context, parent *kong.Path, flag *kong.Flag) (any, error) {
		for _, e := range flag.Envs {
			if _, set := os.LookupEnv(e); set {
				return nil, nil
			}
		}
		return file.Resolve(ctx, parent, flag)
	}), nil
}

func main() {
	var c cli
	ctx := kong.Parse(&c, cliOptions()...)
	if err := ctx.Run(); err != nil {
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
		kong.Vars{"version": version},
		kong.Configuration(jsonUnderEnv),
	}
}
