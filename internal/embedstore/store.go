// Package embedstore is the S3 store that `s3seal serve` runs in-process
// when no upstream is configured, so that the quick start needs nothing but
// the s3seal binary.
//
// It is a small, purpose-built store, not a test fake: object keys are
// stored literally (they never become file names, so "photos/", "a//b",
// "../x" or "a/./b" are keys like any other and cannot leave their bucket);
// an index (bbolt, one file) holds buckets, object records and multipart
// uploads, and object data lives in immutable files named by random ids.
// Listings come from the index in key order, so every kind of listing is
// exact. Multipart parts are files too, so uploads survive restarts, and a
// completed object keeps its parts as they are: reading one part or copying
// it with UploadPartCopy (which s3seal does to finalize every multipart
// upload) hard-links a file instead of copying data.
//
// One process owns a store at a time (an exclusive flock on its LOCK
// file); a second Open fails with ErrLocked. The store serves no network
// port: the proxy reaches it through an in-memory listener (Listener).
package embedstore

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Layout of a store directory:
//
//	LOCK          flock held by the process that owns the store; holds its pid
//	DIRTY         present while a process has it open (absent after a clean Close)
//	index.db      bbolt: buckets, object records, uploads and their parts
//	data/xx/ID    object and part data, immutable once written (xx = ID[:2])
//	tmp/          files being written; emptied on Open
const (
	lockName  = "LOCK"
	dirtyName = "DIRTY"
	indexName = "index.db"
	dataDir   = "data"
	tmpDir    = "tmp"
)

// Index buckets. Object records of S3 bucket B live in bbolt bucket "o/B";
// parts of upload U in "p/U".
var (
	bucketsBkt = []byte("buckets")
	uploadsBkt = []byte("uploads")
	metaBkt    = []byte("meta")
)

func objBkt(bucket string) []byte  { return []byte("o/" + bucket) }
func partBkt(upload string) []byte { return []byte("p/" + upload) }

// ErrLocked is returned by Open when another process owns the store.
var ErrLocked = errors.New("embedded store: data dir in use by another process")

// Store is an open embedded store. It is safe for concurrent use.
type Store struct {
	dir  string
	db   *bolt.DB
	lock *os.File
	log  *slog.Logger
	now  func() time.Time
}

// Options configure Open.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time // for tests; time.Now if nil
}

// Open opens (creating it if needed) the store in dir, converting a data
// dir of the previous embedded store (gofakes3's layout) first. It fails
// with an error wrapping ErrLocked if another process has it open.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	lock, err := acquireLock(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, lock: lock, log: opts.Logger, now: opts.Now}
	ok := false
	defer func() {
		if !ok {
			if s.db != nil {
				s.db.Close()
			}
			lock.Close()
		}
	}()
	for _, d := range []string{dataDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
	}
	_, dirtyErr := os.Stat(filepath.Join(dir, dirtyName))
	wasDirty := dirtyErr == nil
	if err := os.WriteFile(filepath.Join(dir, dirtyName), nil, 0o600); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	s.db, err = bolt.Open(filepath.Join(dir, indexName), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("embedded store: index: %w", err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketsBkt, uploadsBkt, metaBkt} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("embedded store: index: %w", err)
	}
	if err := clearDir(filepath.Join(dir, tmpDir)); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	converted, err := s.upgradeGofakes3()
	if err != nil {
		return nil, fmt.Errorf("embedded store: converting the previous store's data: %w", err)
	}
	if wasDirty || converted {
		// The last process did not close the store: files it wrote but
		// did not index, or unindexed but did not remove, are garbage.
		if err := s.sweep(); err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
	}
	ok = true
	return s, nil
}

// Close closes the index and releases the lock.
func (s *Store) Close() error {
	err := s.db.Close()
	if err == nil {
		err = os.Remove(filepath.Join(s.dir, dirtyName))
	}
	if cerr := s.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func acquireLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := strings.TrimSpace(string(pid))
			if holder == "" {
				holder = "unknown"
			}
			return nil, fmt.Errorf("%w: %s is locked by process %s (one s3seal serve per data dir: stop the other one, or give this one its own --data-dir)", ErrLocked, filepath.Dir(path), holder)
		}
		return nil, fmt.Errorf("embedded store: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// newID returns a random file id.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// dataPath is the path of data file id.
func (s *Store) dataPath(id string) string {
	return filepath.Join(s.dir, dataDir, id[:2], id)
}

// segment is one immutable data file of an object or part.
type segment struct {
	File string `json:"f"` // data file id
	Size int64  `json:"n"`
	MD5  string `json:"m"` // hex MD5 of the file's bytes
}

// object is the index record of one object.
type object struct {
	Size     int64             `json:"size"`
	ETag     string            `json:"etag"` // without quotes: "<md5>" or "<md5>-N"
	Modified time.Time         `json:"mtime"`
	Header   map[string]string `json:"hdr,omitempty"`  // stored request headers, canonical names
	Tags     string            `json:"tags,omitempty"` // URL-encoded tag set, as x-amz-tagging
	// Segments are the data, in order: one for a single PUT, one per
	// part for a completed multipart upload.
	Segments []segment `json:"segs"`
	// Parts is the part count of a multipart object (0 for a single PUT);
	// part i is Segments[i].
	Parts int `json:"parts,omitempty"`
}

// upload is the index record of a multipart upload in progress.
type upload struct {
	Bucket    string            `json:"b"`
	Key       string            `json:"k"`
	Initiated time.Time         `json:"t"`
	Header    map[string]string `json:"hdr,omitempty"`
	Tags      string            `json:"tags,omitempty"`
}

// part is the index record of an uploaded part.
type part struct {
	segment
	Modified time.Time `json:"t"`
}

func partKey(n int) []byte { return []byte(fmt.Sprintf("%05d", n)) }

func getJSON[T any](b *bolt.Bucket, key []byte) (*T, bool, error) {
	if b == nil {
		return nil, false, nil
	}
	v := b.Get(key)
	if v == nil {
		return nil, false, nil
	}
	var t T
	if err := json.Unmarshal(v, &t); err != nil {
		return nil, false, fmt.Errorf("index record %q: %w", key, err)
	}
	return &t, true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, buf)
}

// writeData streams r into a new data file, fsyncs it and returns its
// segment (size and MD5 computed on the way). want < 0 accepts any length;
// otherwise exactly want bytes must arrive.
// writeBody stores a request's body as a data file, checked against its
// Content-MD5 if it has one (nothing is kept when it does not match).
func (s *Store) writeBody(q *request) (segment, error) {
	seg, err := s.writeData(q.r.Body, q.r.ContentLength)
	if err != nil {
		return segment{}, err
	}
	if v := q.r.Header.Get("Content-Md5"); v != "" {
		want, err := base64.StdEncoding.DecodeString(v)
		if err != nil || hex.EncodeToString(want) != seg.MD5 {
			s.removeData([]segment{seg})
			if err != nil {
				return segment{}, newErr(http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified is not valid.")
			}
			return segment{}, errBadDigest
		}
	}
	return seg, nil
}

func (s *Store) writeData(r io.Reader, want int64) (segment, error) {
	id := newID()
	tmp, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), id+".*")
	if err != nil {
		return segment{}, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := newMD5()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return segment{}, errIncompleteBody(err)
	}
	if want >= 0 && n != want {
		return segment{}, errIncompleteBody(fmt.Errorf("got %d of %d bytes", n, want))
	}
	if err := tmp.Sync(); err != nil {
		return segment{}, err
	}
	if err := tmp.Close(); err != nil {
		return segment{}, err
	}
	dst := s.dataPath(id)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return segment{}, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return segment{}, err
	}
	ok = true
	return segment{File: id, Size: n, MD5: hex.EncodeToString(h.Sum(nil))}, nil
}

// linkData gives an existing data file a second name (data files are
// immutable, so a hard link is a copy), falling back to copying where the
// file system has no hard links.
func (s *Store) linkData(src segment) (segment, error) {
	id := newID()
	dst := s.dataPath(id)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return segment{}, err
	}
	if err := os.Link(s.dataPath(src.File), dst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return segment{}, err
		}
		f, oerr := os.Open(s.dataPath(src.File))
		if oerr != nil {
			return segment{}, oerr
		}
		defer f.Close()
		return s.writeData(f, src.Size)
	}
	src.File = id
	return src, nil
}

// removeData deletes data files no record refers to any more.
func (s *Store) removeData(segs []segment) {
	for _, g := range segs {
		if err := os.Remove(s.dataPath(g.File)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("embedded store: could not remove a data file", "file", g.File, "err", err)
		}
	}
}

// sweep removes data files that no object or part record refers to:
// what a process that stopped without closing the store left behind.
func (s *Store) sweep() error {
	used := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			n := string(name)
			if !strings.HasPrefix(n, "o/") && !strings.HasPrefix(n, "p/") {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				var rec struct {
					File     string    `json:"f"`
					Segments []segment `json:"segs"`
				}
				if err := json.Unmarshal(v, &rec); err != nil {
					return err
				}
				if rec.File != "" {
					used[rec.File] = true
				}
				for _, g := range rec.Segments {
					used[g.File] = true
				}
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	removed := 0
	err = filepath.WalkDir(filepath.Join(s.dir, dataDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !used[d.Name()] {
			removed++
			return os.Remove(p)
		}
		return nil
	})
	if removed > 0 {
		s.log.Info("embedded store: removed data files left by an unclean stop", "files", removed)
	}
	return err
}

func copyTo(w io.Writer, r io.Reader) (int64, error) { return io.Copy(w, r) }
