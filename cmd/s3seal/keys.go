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
	"text/tabwriter"
	"time"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/kms/policy"
)

// KeysCmd manages the embedded keyring. A running server picks up every
// change on its next KMS call (it re-reads the keyring file when it
// changes); data keys it has cached keep working for up to the cache's
// max age.
type KeysCmd struct {
	KeyringOptions `embed:"" envprefix:"S3SEAL_"`
	JSON           bool `name:"json" help:"Print JSON instead of a table."`

	Create           KeysCreateCmd           `cmd:"" help:"Create a key (creates the keyring on first use)."`
	List             KeysListCmd             `cmd:"" help:"List keys."`
	Describe         KeysDescribeCmd         `cmd:"" help:"Show one key."`
	Alias            KeysAliasCmd            `cmd:"" help:"Create, repoint or delete an alias."`
	Enable           KeysEnableCmd           `cmd:"" help:"Enable a disabled key."`
	Disable          KeysDisableCmd          `cmd:"" help:"Disable a key: objects under it can be neither written nor read until it is enabled."`
	Rotate           KeysRotateCmd           `cmd:"" help:"Add a new version of a key's material; new data keys use it, old objects stay readable."`
	ScheduleDeletion KeysScheduleDeletionCmd `cmd:"" name:"schedule-deletion" help:"Schedule a key's deletion after a waiting period (7-30 days). After that, every object under it is unrecoverable."`
	CancelDeletion   KeysCancelDeletionCmd   `cmd:"" name:"cancel-deletion" help:"Cancel a scheduled deletion; the key is then disabled (enable it to use it)."`
	Rotations        KeysRotationsCmd        `cmd:"" help:"List a key's material versions (its rotations, automatic and on demand) and its automatic rotation schedule."`
	Policy           KeysPolicyCmd           `cmd:"" help:"Show a key's policy (the KMS API's), or replace it: whoever holds the data dir and master key is the key's root, so this also undoes a policy that locked every identity out."`
	Usage            KeysUsageCmd            `cmd:"" help:"Report which KMS keys (and key versions) protect how many objects and bytes in buckets, from the object headers at the store (any KMS; needs the store's credentials only). The report is kept in the data dir for schedule-deletion."`
	Delete           KeysDeleteCmd           `cmd:"" help:"Delete a key whose waiting period has ended and that the last key usage report does not show in use (such a key is held, not deleted, at its date); --force deletes it anyway."`
	Export           KeysExportCmd           `cmd:"" help:"Write the whole keyring (keys, material, aliases, policies, grants, states, deletion dates, rotation) to an encrypted backup file (age: a recovery passphrase or recovery public keys)."`
	Import           KeysImportCmd           `cmd:"" help:"Restore a keyring backup made by keys export into this data dir (an empty one, unless --merge)."`

	out    io.Writer // nil: os.Stdout
	errOut io.Writer // nil: os.Stderr
}

// AfterApply links the subcommands to the shared flags (kong calls it for
// every command on the parsed path).
func (k *KeysCmd) AfterApply() error {
	k.Create.k, k.List.k, k.Describe.k, k.Alias.k = k, k, k, k
	k.Enable.k, k.Disable.k, k.Rotate.k = k, k, k
	k.ScheduleDeletion.k, k.CancelDeletion.k = k, k
	k.Rotations.k, k.Policy.k, k.Usage.k = k, k, k
	k.Delete.k, k.Export.k, k.Import.k = k, k, k
	return nil
}

func (k *KeysCmd) stdout() io.Writer {
	if k.out != nil {
		return k.out
	}
	return os.Stdout
}

// open opens the keyring; only create may bring a new one into being (a
// typo in --data-dir must not silently make an empty keyring and key).
// It first deletes the keys whose waiting period has ended (and that the
// usage check lets go), so that what a command shows and does is the
// keyring as it stands even when no server runs to do it.
func (k *KeysCmd) open(create bool) (*keyring.Keyring, error) {
	kr, err := k.openKeyring(create)
	if err != nil {
		return nil, err
	}
	deleted, held, err := kr.DeleteDue()
	if err != nil {
		kr.Close()
		return nil, err
	}
	for _, id := range deleted {
		fmt.Fprintf(k.stderr(), "deleted key %s: its waiting period ended\n", id)
	}
	for _, ki := range held {
		fmt.Fprintf(k.stderr(), "warning: key %s is past its deletion date but held: %s\n", ki.KeyID, ki.DeletionHold.Reason)
	}
	return kr, nil
}

func (k *KeysCmd) stderr() io.Writer {
	if k.errOut != nil {
		return k.errOut
	}
	return os.Stderr
}

// openKeyring is open without the deletion of due keys.
func (k *KeysCmd) openKeyring(create bool) (*keyring.Keyring, error) {
	if k == nil {
		return nil, errors.New("keys: internal error: subcommand not linked")
	}
	if !create {
		if _, err := os.Stat(filepath.Join(k.DataDir, keyring.FileName)); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no keyring in %s (create a key first, or set --data-dir / S3SEAL_DATA_DIR)", k.DataDir)
		}
	}
	cfg, mk, err := k.keyringConfig()
	if err != nil {
		return nil, err
	}
	if create {
		if err := mk.ensureDir(); err != nil {
			return nil, err
		}
	}
	kr, err := keyring.Open(cfg)
	if err != nil {
		return nil, err
	}
	if kr.Created() {
		w := k.stderr()
		if f := kr.MasterKeyFile(); f != "" {
			fmt.Fprintf(w, "created a new keyring in %s, protected by %s.\nBack up that file apart from the data: without it no object can be decrypted.\n", k.DataDir, f)
		} else {
			fmt.Fprintf(w, "created a new keyring in %s, protected by the passphrase: without it no object can be decrypted.\n", k.DataDir)
		}
	}
	return kr, nil
}

// keyView is a key as keys list prints it in JSON: its metadata, and the
// hold on its deletion if any.
type keyView struct {
	kms.KeyMetadata
	DeletionHold *keyring.DeletionHold `json:"DeletionHold,omitempty"`
}

func (k *KeysCmd) printKeys(mds []kms.KeyMetadata, holds map[string]keyring.DeletionHold) error {
	if k.JSON {
		enc := json.NewEncoder(k.stdout())
		enc.SetIndent("", "  ")
		views := []keyView{}
		for _, md := range mds {
			v := keyView{KeyMetadata: md}
			if h, ok := holds[md.KeyID]; ok {
				v.DeletionHold = &h
			}
			views = append(views, v)
		}
		return enc.Encode(views)
	}
	tw := tabwriter.NewWriter(k.stdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tSTATE\tVERSIONS\tCREATED\tALIASES\tDESCRIPTION")
	for _, md := range mds {
		state := string(md.KeyState)
		if md.KeyState == kms.KeyPendingDeletion {
			state += " (" + md.DeletionDate.UTC().Format(time.DateOnly)
			if h, ok := holds[md.KeyID]; ok {
				state += fmt.Sprintf(", HELD: %d objects", h.Objects)
			}
			state += ")"
		}
		aliases := strings.Join(md.Aliases, ",")
		if aliases == "" {
			aliases = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", md.KeyID, state, md.KeyVersions,
			md.CreationDate.UTC().Format(time.RFC3339), aliases, md.Description)
	}
	return tw.Flush()
}

func (k *KeysCmd) printKey(md *kms.KeyMetadata, hold *keyring.DeletionHold) error {
	if k.JSON {
		enc := json.NewEncoder(k.stdout())
		enc.SetIndent("", "  ")
		return enc.Encode(keyView{KeyMetadata: *md, DeletionHold: hold})
	}
	tw := tabwriter.NewWriter(k.stdout(), 0, 4, 2, ' ', 0)
	row := func(name, value string) { fmt.Fprintf(tw, "%s\t%s\n", name, value) }
	row("KeyId", md.KeyID)
	row("Arn", md.Arn)
	row("State", string(md.KeyState))
	if md.Asymmetric() {
		row("KeySpec", md.KeySpec)
		row("KeyUsage", md.KeyUsage)
		row("EncryptionAlgorithms", strings.Join(md.EncryptionAlgorithms, ", "))
	}
	if !md.DeletionDate.IsZero() {
		row("DeletionDate", md.DeletionDate.UTC().Format(time.RFC3339))
	}
	if md.Origin != "" {
		row("Origin", md.Origin)
		row("CustomKeyStoreId", md.CustomKeyStoreID)
	}
	if hold != nil {
		row("DeletionHeld", hold.Reason+" (since "+hold.Since.UTC().Format(time.RFC3339)+")")
	}
	row("Versions", fmt.Sprint(md.KeyVersions))
	row("Created", md.CreationDate.UTC().Format(time.RFC3339))
	row("Aliases", strings.Join(md.Aliases, ", "))
	row("Description", md.Description)
	return tw.Flush()
}

// describe re-reads a key after a change and prints it.
func (k *KeysCmd) describe(kr *keyring.Keyring, keyID string) error {
	md, err := kr.DescribeKey(context.Background(), keyID)
	if err != nil {
		return err
	}
	holds, err := kr.DeletionHolds()
	if err != nil {
		return err
	}
	var hold *keyring.DeletionHold
	if h, ok := holds[md.KeyID]; ok {
		hold = &h
	}
	return k.printKey(md, hold)
}

// KeysCreateCmd creates a key.
type KeysCreateCmd struct {
	Description    string   `short:"d" help:"Free-text description."`
	Alias          []string `help:"Alias(es) to point at the new key, e.g. alias/photos."`
	Spec           string   `default:"SYMMETRIC_DEFAULT" enum:"SYMMETRIC_DEFAULT,RSA_3072,RSA_4096" help:"Key spec: SYMMETRIC_DEFAULT (an AES-256 key), or RSA_3072 / RSA_4096, an RSA key pair whose public half a write-only instance wraps data keys with (serve --write-only-key) and whose private half stays in the keyring."`
	CustomKeyStore string   `name:"custom-key-store" enum:",pkcs11" default:"" help:"Create the key in a custom key store: 'pkcs11' makes its material inside the HSM of --pkcs11-module/--pkcs11-token-label (never extractable; the keyring keeps only its label). DescribeKey then shows Origin AWS_CLOUDHSM. Symmetric keys only."`
	HSMLabel       string   `name:"hsm-label" help:"With --custom-key-store, the HSM key's label (CKA_LABEL); rotations add -v2, -v3, ... Default s3seal-<key id>."`

	k *KeysCmd
}

// Run creates the key and its aliases.
func (c *KeysCreateCmd) Run() error {
	if c.HSMLabel != "" && c.CustomKeyStore == "" {
		return errors.New("keys create: --hsm-label needs --custom-key-store pkcs11")
	}
	if c.CustomKeyStore != "" && c.k.PKCS11Module == "" {
		return errors.New("keys create: --custom-key-store pkcs11 needs the HSM: --pkcs11-module, --pkcs11-token-label and the PIN (S3SEAL_PKCS11_PIN or --pkcs11-pin-file)")
	}
	kr, err := c.k.open(true)
	if err != nil {
		return err
	}
	defer kr.Close()
	ki, err := kr.CreateKeyWith(keyring.KeyOptions{Description: c.Description, KeySpec: c.Spec, InKeyStore: c.CustomKeyStore != "", Label: c.HSMLabel})
	if err != nil {
		return err
	}
	md := &ki.KeyMetadata
	for _, a := range c.Alias {
		if err := kr.CreateAlias(a, md.KeyID); err != nil {
			return fmt.Errorf("key %s created, but alias %s: %w", md.KeyID, a, err)
		}
	}
	return c.k.describe(kr, md.KeyID)
}

// KeysListCmd lists keys.
type KeysListCmd struct {
	k *KeysCmd
}

// Run lists every key.
func (c *KeysListCmd) Run() error {
	kr, err := c.k.open(false)
	if err != nil {
		return err
	}
	defer kr.Close()
	mds, err := kr.ListKeys()
	if err != nil {
		return err
	}
	holds, err := kr.DeletionHolds()
	if err != nil {
		return err
	}
	return c.k.printKeys(mds, holds)
}

// KeysDescribeCmd shows one key.
type KeysDescribeCmd struct {
	Key string `arg:"" help:"Key id, ARN or alias."`

	k *KeysCmd
}

// Run describes the key.
func (c *KeysDescribeCmd) Run() error {
	kr, err := c.k.open(false)
	if err != nil {
		return err
	}
	defer kr.Close()
	return c.k.describe(kr, c.Key)
}

// KeysAliasCmd manages an alias.
type KeysAliasCmd struct {
	Alias  string `arg:"" help:"Alias name, alias/..."`
	Key    string `arg:"" optional:"" help:"Key id, ARN or alias it names (not with --delete)."`
	Update bool   `help:"Repoint an existing alias."`
	Delete bool   `help:"Delete the alias (the key is untouched)."`

	k *KeysCmd
}

// Run creates, updates or deletes the alias.
func (c *KeysAliasCmd) Run() error {
	if c.Delete == (c.Key != "") {
		return errors.New("keys alias: give ALIAS KEY to create or --update, or ALIAS --delete")
	}
	kr, err := c.k.open(false)
	if err != nil {
		return err
	}
	defer kr.Close()
	switch {
	case c.Delete:
		if err := kr.DeleteAlias(c.Alias); err != nil {
			return err
		}
		fmt.Fprintf(c.k.stdout(), "deleted %s\n", c.Alias)
		return nil
	case c.Update:
		err = kr.UpdateAlias(c.Alias, c.Key)
	default:
		err = kr.CreateAlias(c.Alias, c.Key)
	}
	if err != nil {
		return err
	}
	return c.k.describe(kr, c.Alias)
}

// KeysEnableCmd enables a key.
type KeysEnableCmd struct {
	Key string `arg:"" help:"Key id, ARN or alias."`

	k *KeysCmd
}

// Run enables the key.
func (c *KeysEnableCmd) Run() error {
	return c.k.mutate(c.Key, func(kr *keyring.Keyring, id string) error { return kr.EnableKey(id) })
}

// KeysDisableCmd disables a key.
type KeysDisableCmd struct {
	Key string `arg:"" help:"Key id, ARN or alias."`

	k *KeysCmd
}

// Run disables the key.
func (c *KeysDisableCmd) Run() error {
	return c.k.mutate(c.Key, func(kr *keyring.Keyring, id string) error { return kr.DisableKey(id) })
}

// KeysRotateCmd rotates a key's material.
type KeysRotateCmd struct {
	Key string `arg:"" help:"Key id, ARN or alias."`

	k *KeysCmd
}

// Run adds a key version.
func (c *KeysRotateCmd) Run() error {
	return c.k.mutate(c.Key, func(kr *keyring.Keyring, id string) error {
		_, err := kr.RotateKey(id)
		return err
	})
}

// KeysScheduleDeletionCmd schedules a key's deletion.
type KeysScheduleDeletionCmd struct {
	Key   string `arg:"" help:"Key id, ARN or alias."`
	Days  int    `default:"30" help:"Waiting period in days, 7 to 30."`
	Force bool   `help:"Schedule the deletion even though the last key usage report (s3seal keys usage) shows objects under the key; the key is then deleted at its date without the check that would otherwise hold it."`

	k *KeysCmd
}

// Run schedules the deletion, unless the kept usage report shows the key
// in use (deletionCheck).
func (c *KeysScheduleDeletionCmd) Run() error {
	warn := c.k.errOut
	if warn == nil {
		warn = os.Stderr
	}
	return c.k.mutate(c.Key, func(kr *keyring.Keyring, id string) error {
		md, err := kr.DescribeKey(context.Background(), id)
		if err != nil {
			return err
		}
		forced, err := deletionCheck(c.k.DataDir, md, c.Force, warn, time.Now())
		if err != nil {
			return err
		}
		if _, err = kr.ScheduleKeyDeletion(id, c.Days); err != nil || !forced {
			return err
		}
		// The operator was told of the objects and said delete: the
		// check at the end of the waiting period would only ask again.
		return kr.OverrideDeletionCheck(id)
	})
}

// KeysCancelDeletionCmd cancels a scheduled deletion.
type KeysCancelDeletionCmd struct {
	Key string `arg:"" help:"Key id, ARN or alias."`

	k *KeysCmd
}

// Run cancels the deletion.
func (c *KeysCancelDeletionCmd) Run() error {
	return c.k.mutate(c.Key, func(kr *keyring.Keyring, id string) error { return kr.CancelKeyDeletion(id) })
}

// mutate opens the keyring, resolves keyID to the key's id (so the key can
// be shown after the change even if an alias moved), applies fn and prints
// the key.
func (k *KeysCmd) mutate(keyID string, fn func(kr *keyring.Keyring, id string) error) error {
	kr, err := k.open(false)
	if err != nil {
		return err
	}
	defer kr.Close()
	md, err := kr.DescribeKey(context.Background(), keyID)
	if err != nil {
		return err
	}
	if err := fn(kr, md.KeyID); err != nil {
		return err
	}
	return k.describe(kr, md.KeyID)
}

// KeysRotationsCmd lists a key's material versions.
type KeysRotationsCmd struct {
	Key string `arg:"" help:"Key id, ARN or alias."`

	k *KeysCmd
}

// rotationsView is what keys rotations prints.
type rotationsView struct {
	KeyID                string            `json:"KeyId"`
	RotationEnabled      bool              `json:"RotationEnabled"`
	RotationPeriodInDays int               `json:"RotationPeriodInDays,omitempty"`
	NextRotationDate     time.Time         `json:"NextRotationDate,omitzero"`
	Versions             []rotationVersion `json:"Versions"`
}

type rotationVersion struct {
	Version       int       `json:"Version"`
	Created       time.Time `json:"Created"`
	RotationType  string    `json:"RotationType,omitempty"` // AUTOMATIC, ON_DEMAND; "" for the first
	State         string    `json:"KeyMaterialState"`       // CURRENT or NON_CURRENT
	KeyMaterialID string    `json:"KeyMaterialId"`
	// HSMKeyLabel is the version's key label in the HSM, for a key held
	// in one: what the HSM's own tools list.
	HSMKeyLabel string `json:"HSMKeyLabel,omitempty"`
}

// Run lists the versions, oldest first.
func (c *KeysRotationsCmd) Run() error {
	kr, err := c.k.open(false)
	if err != nil {
		return err
	}
	defer kr.Close()
	ki, err := kr.Key(c.Key)
	if err != nil {
		return err
	}
	v := rotationsView{KeyID: ki.KeyID}
	if r := ki.Rotation; r != nil {
		v.RotationEnabled, v.RotationPeriodInDays, v.NextRotationDate = true, r.PeriodDays, r.NextRotation
	}
	for _, kv := range ki.Versions {
		rv := rotationVersion{Version: kv.Version, Created: kv.Created, State: "NON_CURRENT", KeyMaterialID: kv.MaterialID, HSMKeyLabel: kv.Label}
		if kv.Version == len(ki.Versions) {
			rv.State = "CURRENT"
		}
		if kv.Version > 1 {
			rv.RotationType = "ON_DEMAND"
			if kv.Automatic {
				rv.RotationType = "AUTOMATIC"
			}
		}
		v.Versions = append(v.Versions, rv)
	}
	if c.k.JSON {
		enc := json.NewEncoder(c.k.stdout())
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := c.k.stdout()
	fmt.Fprintf(w, "Key %s: ", v.KeyID)
	if v.RotationEnabled {
		fmt.Fprintf(w, "automatic rotation every %d days, next %s\n", v.RotationPeriodInDays, v.NextRotationDate.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintln(w, "automatic rotation off")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	inHSM := ki.Origin != ""
	header := "VERSION\tSTATE\tCREATED\tROTATION\tKEY MATERIAL ID"
	if inHSM {
		header += "\tHSM KEY LABEL"
	}
	fmt.Fprintln(tw, header)
	for _, rv := range v.Versions {
		typ := rv.RotationType
		if typ == "" {
			typ = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s", rv.Version, rv.State, rv.Created.UTC().Format(time.RFC3339), typ, rv.KeyMaterialID)
		if inHSM {
			fmt.Fprintf(tw, "\t%s", rv.HSMKeyLabel)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// KeysPolicyCmd shows or replaces a key's policy.
type KeysPolicyCmd struct {
	Key     string `arg:"" help:"Key id, ARN or alias."`
	Set     string `help:"Replace the policy with the one in this JSON file. It is checked, but not for locking identities out: this command is the way back in." type:"existingfile"`
	Default bool   `help:"Replace the policy with the default one (the KMS API's administrators may do everything)."`

	k *KeysCmd
}

// Run prints the policy, after replacing it if asked.
func (c *KeysPolicyCmd) Run() error {
	if c.Set != "" && c.Default {
		return errors.New("keys policy: --set and --default exclude each other")
	}
	kr, err := c.k.open(false)
	if err != nil {
		return err
	}
	defer kr.Close()
	ki, err := kr.Key(c.Key)
	if err != nil {
		return err
	}
	switch {
	case c.Default:
		err = kr.SetPolicy(ki.KeyID, keyring.DefaultPolicy)
	case c.Set != "":
		var b []byte
		if b, err = os.ReadFile(c.Set); err != nil {
			return err
		}
		if _, err := policy.Parse(b); err != nil {
			return fmt.Errorf("keys policy: %s: %w", c.Set, err)
		}
		err = kr.SetPolicy(ki.KeyID, string(b))
	}
	if err != nil {
		return err
	}
	if ki, err = kr.Key(ki.KeyID); err != nil {
		return err
	}
	_, err = io.WriteString(c.k.stdout(), strings.TrimRight(ki.Policy, "\n")+"\n")
	return err
}
