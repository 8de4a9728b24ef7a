package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/s3seal/s3seal/proxy/s3wire"
)

// Identity is one set of client credentials and what it may do.
type Identity struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	// Buckets the identity may use; "*" means all. Empty means none.
	Buckets []string `json:"buckets"`
	// KMSKeys the identity may ask for with SSE-KMS request headers (key
	// ids, ARNs or aliases); "*" means any. Empty: only each bucket's own
	// key, which is always allowed.
	KMSKeys []string `json:"kms_keys,omitempty"`
	// Permissions the identity holds on its buckets: "read" (objects and
	// listings), "write" (objects and uploads) and "admin" (create and
	// delete buckets, write their configuration). Empty means read and
	// write, what an identity without the field could always do with
	// objects; "admin" is only ever granted explicitly.
	Permissions []string `json:"permissions,omitempty"`
}

// Permission names of the credentials file.
const (
	PermRead  = "read"
	PermWrite = "write"
	PermAdmin = "admin"
)

// AllPermissions is every permission.
var AllPermissions = []string{PermRead, PermWrite, PermAdmin}

// allows reports whether the identity may use bucket.
func (id *Identity) allows(bucket string) bool {
	return slices.Contains(id.Buckets, "*") || slices.Contains(id.Buckets, bucket)
}

// holds reports whether the identity holds access on its buckets.
func (id *Identity) holds(access s3wire.Access) bool {
	if len(id.Permissions) == 0 {
		return access == s3wire.AccessRead || access == s3wire.AccessWrite
	}
	return slices.Contains(id.Permissions, access.String())
}

// permit says why the identity may not call an operation needing access
// on bucket, or "" if it may.
func (id *Identity) permit(bucket string, access s3wire.Access) string {
	if !id.allows(bucket) {
		return "bucket " + bucket + " is not among the identity's buckets"
	}
	if !id.holds(access) {
		return "the identity lacks the " + access.String() + " permission"
	}
	return ""
}

// validate checks the identity's fields as a credentials file gives them.
func (id *Identity) validate() error {
	if id.AccessKey == "" || id.SecretKey == "" {
		return errors.New("lacks access_key or secret_key")
	}
	for _, p := range id.Permissions {
		if p != PermRead && p != PermWrite && p != PermAdmin {
			return fmt.Errorf("unknown permission %q (want read, write or admin)", p)
		}
	}
	return nil
}

// Identities resolves client credentials and anonymous access. The proxy
// asks on every request, so an implementation may change its answers at
// any time (a reloaded file).
type Identities interface {
	Lookup(accessKey string) (*Identity, bool)
	// AnonymousRead reports whether unsigned GET/HEAD requests may read
	// objects of bucket and list it.
	AnonymousRead(bucket string) bool
}

// StaticIdentities is a fixed set of identities.
type StaticIdentities struct {
	ByKey         map[string]*Identity
	anonymousRead []string
}

// NewStaticIdentities makes a set from a list.
func NewStaticIdentities(ids []Identity, anonymousRead []string) *StaticIdentities {
	s := &StaticIdentities{ByKey: map[string]*Identity{}, anonymousRead: anonymousRead}
	for i := range ids {
		s.ByKey[ids[i].AccessKey] = &ids[i]
	}
	return s
}

func (s *StaticIdentities) Lookup(k string) (*Identity, bool) {
	id, ok := s.ByKey[k]
	return id, ok
}

func (s *StaticIdentities) AnonymousRead(bucket string) bool {
	return slices.Contains(s.anonymousRead, bucket)
}

// credentialsFile is the JSON layout of S3SEAL_CREDENTIALS_FILE.
type credentialsFile struct {
	Identities           []Identity `json:"identities"`
	AnonymousReadBuckets []string   `json:"anonymous_read_buckets"`
}

// FileIdentities serves identities from a JSON credentials file and
// re-reads it when it changes, so keys can be added or revoked without a
// restart. A file that fails to parse is reported and the previous
// identities stay in force.
type FileIdentities struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	cur     *StaticIdentities
	modTime time.Time
	size    int64
	checked time.Time
}

// LoadIdentities reads path; it fails if the first read fails.
func LoadIdentities(path string, log *slog.Logger) (*FileIdentities, error) {
	f := &FileIdentities{path: path, log: log}
	if err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FileIdentities) reload() error {
	st, err := os.Stat(f.path)
	if err != nil {
		return err
	}
	if f.cur != nil && st.ModTime().Equal(f.modTime) && st.Size() == f.size {
		return nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	var cf credentialsFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	for i, id := range cf.Identities {
		if err := id.validate(); err != nil {
			return fmt.Errorf("%s: identity %d: %w", f.path, i, err)
		}
	}
	f.cur = NewStaticIdentities(cf.Identities, cf.AnonymousReadBuckets)
	f.modTime, f.size = st.ModTime(), st.Size()
	return nil
}

func (f *FileIdentities) current() *StaticIdentities {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); now.Sub(f.checked) >= time.Second {
		f.checked = now
		if err := f.reload(); err != nil {
			f.log.Error("credentials file not reloaded; keeping the previous identities", "err", err)
		}
	}
	return f.cur
}

func (f *FileIdentities) Lookup(k string) (*Identity, bool) { return f.current().Lookup(k) }

func (f *FileIdentities) AnonymousRead(bucket string) bool {
	return f.current().AnonymousRead(bucket)
}
