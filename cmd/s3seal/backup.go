package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"
	"golang.org/x/term"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
)

// Keyring backup files. A backup is an age file (age-encryption.org/v1):
// its payload is the keyring.Backup JSON document, which holds every key's
// material in clear. age is the sealing because it is a small, specified,
// audited format with a maintained Go implementation, and it gives both
// ways a recovery secret is kept: a passphrase (scrypt, its salt and work
// factor in the file's header; 2^18, about 1 s and 256 MiB, so that every
// guess costs as much) or one or more recipient public keys (X25519, or
// age's post-quantum hybrid keys), whose secret halves stay offline. Its
// header is authenticated with a key derived from the file key, and the
// payload is ChaCha20-Poly1305 in 64 KiB chunks, so a wrong passphrase,
// a damaged file or an altered one fails before anything is restored. And
// a backup opens with the age tool alone (age -d), s3seal or not.

// recoveryPassphraseEnv holds the recovery passphrase when no file does.
// There is no flag: other users see a process's arguments.
const recoveryPassphraseEnv = "S3SEAL_RECOVERY_PASSPHRASE"

// minRecoveryPassphrase is the shortest passphrase export accepts: it
// protects every key, and whoever holds a copy of the backup can guess
// offline for as long as they like.
const minRecoveryPassphrase = 12

// maxBackupBytes bounds what import reads (the keyring file's own bound).
const maxBackupBytes = 64 << 20

// recoveryPassphrase reads the passphrase from file, else the environment,
// else the terminal (twice when confirm).
func recoveryPassphrase(file string, confirm bool) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("recovery passphrase: %w", err)
		}
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" {
			return "", fmt.Errorf("recovery passphrase: %s is empty", file)
		}
		return p, nil
	}
	if p := os.Getenv(recoveryPassphraseEnv); p != "" {
		return p, nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("no recovery passphrase: give --passphrase-file FILE, set %s, or run on a terminal", recoveryPassphraseEnv)
	}
	defer tty.Close()
	ask := func(prompt string) (string, error) {
		fmt.Fprint(tty, prompt)
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		return string(b), err
	}
	p, err := ask("Recovery passphrase: ")
	if err != nil {
		return "", fmt.Errorf("recovery passphrase: %w", err)
	}
	if confirm {
		again, err := ask("Again: ")
		if err != nil {
			return "", fmt.Errorf("recovery passphrase: %w", err)
		}
		if again != p {
			return "", errors.New("recovery passphrase: the two entries differ")
		}
	}
	if p == "" {
		return "", errors.New("recovery passphrase: empty")
	}
	return p, nil
}

// KeysExportCmd writes an encrypted backup of the keyring.
type KeysExportCmd struct {
	To             string   `required:"" placeholder:"FILE" help:"Backup file to write ('-': standard output); mode 0600, replaced atomically."`
	Recipient      []string `placeholder:"AGE-PUBLIC-KEY" help:"Encrypt to this age public key (age1..., from age-keygen) instead of a passphrase; repeat for several, any one of whose secret keys restores."`
	RecipientsFile string   `type:"existingfile" placeholder:"FILE" help:"File of age public keys, one a line (# comments)."`
	PassphraseFile string   `type:"existingfile" placeholder:"FILE" help:"File holding the recovery passphrase (at least 12 characters). Else S3SEAL_RECOVERY_PASSPHRASE, else it is asked twice on the terminal; never a flag."`

	k *KeysCmd
}

// Run writes the backup and, for a passphrase, reads it back to prove it
// opens.
func (c *KeysExportCmd) Run() error {
	if err := fipsCheckBackup("export"); err != nil {
		return err
	}
	var recips []age.Recipient
	for _, r := range c.Recipient {
		rs, err := age.ParseRecipients(strings.NewReader(r))
		if err != nil {
			return fmt.Errorf("--recipient %q: %w", r, err)
		}
		recips = append(recips, rs...)
	}
	if c.RecipientsFile != "" {
		f, err := os.Open(c.RecipientsFile)
		if err != nil {
			return err
		}
		rs, err := age.ParseRecipients(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", c.RecipientsFile, err)
		}
		recips = append(recips, rs...)
	}
	var passphrase string
	how := fmt.Sprintf("for %d age recipient(s); restore with one of their identities (keys import --identity FILE)", len(recips))
	if len(recips) == 0 {
		if c.PassphraseFile == "" && os.Getenv(recoveryPassphraseEnv) == "" {
			fmt.Fprintln(c.k.stderr(), "The backup holds every key in clear, encrypted under this recovery passphrase: keep it apart from the backup.")
		}
		p, err := recoveryPassphrase(c.PassphraseFile, true)
		if err != nil {
			return err
		}
		if len([]rune(p)) < minRecoveryPassphrase {
			return fmt.Errorf("the recovery passphrase has %d characters; want at least %d (it guards every key, and a copy of the backup can be attacked offline)", len([]rune(p)), minRecoveryPassphrase)
		}
		r, err := age.NewScryptRecipient(p)
		if err != nil {
			return err
		}
		recips, passphrase = []age.Recipient{r}, p
		how = "under the recovery passphrase (age scrypt, work factor 2^18)"
	} else if c.PassphraseFile != "" {
		return errors.New("--passphrase-file and recipients exclude each other: a backup is for a passphrase or for public keys")
	}

	kr, err := c.k.open(false)
	if err != nil {
		return err
	}
	defer kr.Close()
	b, err := kr.Backup()
	if err != nil {
		return err
	}
	defer b.Zero()
	plain, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	defer kms.Zero(plain)

	var sealed bytes.Buffer
	w, err := age.Encrypt(&sealed, recips...)
	if err != nil {
		return err
	}
	if _, err := w.Write(plain); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if passphrase != "" {
		// Read it back before anyone relies on it. scrypt's 256 MiB of
		// the encryption are garbage now: collected first, the peak is
		// one scrypt's, not two (measured: 287 MiB instead of 550 MiB).
		runtime.GC()
		got, err := openBackup(bytes.NewReader(sealed.Bytes()), c.To, passphrase, nil)
		if err != nil {
			return fmt.Errorf("the backup does not read back: %w", err)
		}
		got.Zero()
	}
	if c.To == "-" {
		if _, err := c.k.stdout().Write(sealed.Bytes()); err != nil {
			return err
		}
	} else if err := writeFileAtomic(c.To, sealed.Bytes()); err != nil {
		return err
	}
	w2 := c.k.stderr()
	keys := b.Keys()
	fmt.Fprintf(w2, "exported %d keys to %s, encrypted %s\n", len(keys), c.To, how)
	printBackupKeys(w2, keys)
	for _, k := range keys {
		if k.ReferenceOnly {
			fmt.Fprintf(w2, "warning: key %s is backed by an HSM: the backup holds only its reference, not its key, which never leaves the HSM; back that up with the HSM's own tools\n", k.KeyID)
		}
	}
	fmt.Fprintln(w2, "Export again after every key create, rotate, alias or policy change: a key made after this backup is not in it.")
	return nil
}

// writeFileAtomic replaces path with data (0600): temp file, fsync,
// rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// openBackup decrypts and parses a backup file, with a passphrase or with
// age identities. name is for errors.
func openBackup(r io.Reader, name, passphrase string, ids []age.Identity) (*keyring.Backup, error) {
	if passphrase != "" {
		id, err := age.NewScryptIdentity(passphrase)
		if err != nil {
			return nil, err
		}
		ids = []age.Identity{id}
	}
	pr, err := age.Decrypt(r, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		switch {
		case errors.As(err, &nm) && passphrase != "" && !slices.Contains(nm.StanzaTypes, "scrypt"):
			return nil, fmt.Errorf("%s is encrypted to age public keys, not a passphrase: give --identity FILE (nothing was changed)", name)
		case errors.As(err, &nm) && passphrase != "":
			return nil, fmt.Errorf("wrong recovery passphrase for %s (nothing was changed)", name)
		case errors.As(err, &nm):
			return nil, fmt.Errorf("none of the identities given opens %s (it is for %s; nothing was changed)", name, strings.Join(nm.StanzaTypes, ", "))
		}
		return nil, fmt.Errorf("%s is not a keyring backup (an age file): %w", name, err)
	}
	plain, err := io.ReadAll(io.LimitReader(pr, maxBackupBytes+1))
	defer kms.Zero(plain)
	if err != nil {
		return nil, fmt.Errorf("%s is damaged or was altered (nothing was changed): %w", name, err)
	}
	if len(plain) > maxBackupBytes {
		return nil, fmt.Errorf("%s: more than %d bytes", name, maxBackupBytes)
	}
	var b keyring.Backup
	if err := json.Unmarshal(plain, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &b, nil
}

// printBackupKeys lists a backup's keys.
func printBackupKeys(w io.Writer, keys []keyring.BackedUpKey) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  KEY ID\tSTATE\tVERSIONS\tALIASES\tDESCRIPTION")
	for _, k := range keys {
		state := string(k.State)
		if !k.DeletionDate.IsZero() {
			state += " (" + k.DeletionDate.UTC().Format(time.RFC3339) + ")"
		}
		aliases := strings.Join(k.Aliases, ",")
		if aliases == "" {
			aliases = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", k.KeyID, state, k.Versions, aliases, k.Description)
	}
	tw.Flush()
}

// KeysImportCmd restores a backup into the data dir's keyring.
type KeysImportCmd struct {
	From           string   `required:"" placeholder:"FILE" help:"Backup file written by keys export ('-': standard input)."`
	Identity       []string `type:"existingfile" placeholder:"FILE" help:"age identity file (secret key) of a recipient the backup was encrypted to; repeatable. Without it the recovery passphrase is used."`
	PassphraseFile string   `type:"existingfile" placeholder:"FILE" help:"File holding the recovery passphrase. Else S3SEAL_RECOVERY_PASSPHRASE, else it is asked on the terminal; never a flag."`
	Merge          bool     `help:"Restore into a keyring that already has keys: add the keys it lacks, and newer versions of keys it has (if the versions both have are the same material; else nothing is restored). Aliases it has keep their targets; conflicts are listed."`
	KeepExpired    bool     `help:"Restore the keys whose deletion date passed while they were in the backup, with the deletion cancelled (Disabled). Without it they are left out, as the keyring would have deleted them."`
	DryRun         bool     `help:"Decrypt and check the backup and list what it holds; change nothing (a restore test that needs no data dir)."`

	k *KeysCmd
}

// Run decrypts, checks and restores the backup.
func (c *KeysImportCmd) Run() error {
	if err := fipsCheckBackup("import"); err != nil {
		return err
	}
	if !c.DryRun && !c.Merge {
		if _, err := os.Stat(filepath.Join(c.k.DataDir, keyring.FileName)); err == nil {
			kr, err := c.k.openKeyring(false)
			if err != nil {
				return fmt.Errorf("%s has a keyring that does not open (%w): restore into an empty data dir (move %s away), or with its master key and --merge", c.k.DataDir, err, keyring.FileName)
			}
			mds, err := kr.ListKeys()
			kr.Close()
			if err != nil {
				return err
			}
			if len(mds) > 0 {
				return fmt.Errorf("%s already has a keyring with %d keys: restore into an empty data dir, or merge the backup into it with --merge", c.k.DataDir, len(mds))
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	var ids []age.Identity
	for _, f := range c.Identity {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		is, err := age.ParseIdentities(fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		ids = append(ids, is...)
	}
	var passphrase string
	if len(ids) == 0 {
		p, err := recoveryPassphrase(c.PassphraseFile, false)
		if err != nil {
			return err
		}
		passphrase = p
	}
	var in io.Reader = os.Stdin
	if c.From != "-" {
		f, err := os.Open(c.From)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	b, err := openBackup(in, c.From, passphrase, ids)
	if err != nil {
		return err
	}
	defer b.Zero()
	w := c.k.stdout()
	keys := b.Keys()
	if c.DryRun {
		fmt.Fprintf(w, "%s: a keyring backup of %s with %d keys; it opens and is intact\n", c.From, b.Exported().Format(time.RFC3339), len(keys))
		printBackupKeys(w, keys)
		return nil
	}
	kr, err := c.k.open(true)
	if err != nil {
		return err
	}
	defer kr.Close()
	res, err := kr.Restore(b, keyring.RestoreOptions{Merge: c.Merge, KeepExpired: c.KeepExpired})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "restored from %s (exported %s) into %s: %d keys added, %d given newer versions, %d already there\n",
		c.From, b.Exported().Format(time.RFC3339), c.k.DataDir, len(res.Added), len(res.Extended), len(res.Same))
	printBackupKeys(w, keys)
	for _, id := range res.Expired {
		if c.KeepExpired {
			fmt.Fprintf(w, "key %s: its deletion date passed while it was in the backup; restored with the deletion cancelled (Disabled)\n", id)
		} else {
			fmt.Fprintf(w, "key %s: its deletion date passed while it was in the backup; NOT restored (it would have been deleted); --keep-expired restores it Disabled\n", id)
		}
	}
	for _, id := range res.ReferenceOnly {
		fmt.Fprintf(w, "key %s: backed by an HSM, the backup holds only its reference: NOT restored\n", id)
	}
	for _, a := range res.AliasConflicts {
		fmt.Fprintf(w, "alias %s: the keyring's alias names another key than the backup's; kept the keyring's\n", a)
	}
	return nil
}
