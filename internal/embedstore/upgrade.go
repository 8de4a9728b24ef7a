package embedstore

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The previous embedded store (gofakes3 with its afero backend, s3seal up
// to issue 27) kept, under the same directory:
//
//	buckets/BUCKET/KEY      object data at path.Join(BUCKET, KEY): keys were
//	                        normalized ("a/./b" at a/b, "../x" outside the
//	                        bucket, "photos/" at photos)
//	metadata/BUCKET/NAME    JSON {File, ModTime, Size, Hash, Meta}: NAME is
//	                        the key with "/" and "\" as "_", "-", and the
//	                        hex FNV-128a of the key itself
//	multipart-etags.json    {"BUCKET\x00KEY": {"parts": N, "md5": HEX}}: the
//	                        part count of completed multipart objects
//
// upgradeGofakes3 indexes every object of that layout in this store, by
// its real key (found from the metadata file's name and hash), hard-linking
// its data file, then removes the old layout. It is idempotent: a
// conversion cut short is done again, whole, at the next Open. It returns
// whether it converted anything.
func (s *Store) upgradeGofakes3() (bool, error) {
	oldBuckets := filepath.Join(s.dir, "buckets")
	oldMeta := filepath.Join(s.dir, "metadata")
	etagsPath := filepath.Join(s.dir, "multipart-etags.json")
	_, errB := os.Stat(oldBuckets)
	_, errM := os.Stat(oldMeta)
	if errors.Is(errB, fs.ErrNotExist) && errors.Is(errM, fs.ErrNotExist) {
		return false, nil
	}
	s.log.Info("embedded store: converting the data of the previous embedded store (gofakes3)", "dir", s.dir)
	parts := map[string]struct {
		Parts int    `json:"parts"`
		MD5   string `json:"md5"`
	}{}
	if b, err := os.ReadFile(etagsPath); err == nil {
		if err := json.Unmarshal(b, &parts); err != nil {
			return false, fmt.Errorf("%s: %w", etagsPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	// Buckets: the directories under buckets/.
	entries, err := os.ReadDir(oldBuckets)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := s.ensureBucket(e.Name()); err != nil {
			return false, err
		}
	}
	claimed := map[string]bool{} // data files (relative to buckets/) some key owns
	objects, lost := 0, 0
	metaBuckets, err := os.ReadDir(oldMeta)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	for _, mb := range metaBuckets {
		if !mb.IsDir() {
			continue
		}
		bucket := mb.Name()
		if err := s.ensureBucket(bucket); err != nil {
			return false, err
		}
		files, err := os.ReadDir(filepath.Join(oldMeta, bucket))
		if err != nil {
			return false, err
		}
		for _, f := range files {
			var m struct {
				File    string
				ModTime time.Time
				Size    int64
				Hash    []byte
				Meta    map[string]string
			}
			b, err := os.ReadFile(filepath.Join(oldMeta, bucket, f.Name()))
			if err != nil {
				return false, err
			}
			if err := json.Unmarshal(b, &m); err != nil {
				s.log.Warn("embedded store: skipping an unreadable metadata file of the previous store", "file", f.Name(), "err", err)
				continue
			}
			key, ok := gofakes3Key(f.Name())
			if !ok {
				key = strings.TrimPrefix(m.File, bucket+"/")
				s.log.Warn("embedded store: could not recover a key exactly from its metadata file name; using its data path", "file", f.Name(), "key", key)
			}
			data := filepath.Join(oldBuckets, filepath.FromSlash(m.File))
			seg, err := s.importFile(data)
			if err != nil {
				lost++
				s.log.Warn("embedded store: an object of the previous store has no data file; it was lost before the conversion", "bucket", bucket, "key", key, "err", err)
				continue
			}
			if hex.EncodeToString(m.Hash) != seg.MD5 {
				// Another key normalized to the same path overwrote it
				// (the previous store's bug): nothing left to convert.
				s.removeData([]segment{seg})
				lost++
				s.log.Warn("embedded store: an object of the previous store was overwritten by another key with the same normalized path; it was lost before the conversion", "bucket", bucket, "key", key, "path", m.File)
				continue
			}
			claimed[m.File] = true
			if err := s.commitObject(bucket, key, convertedObject(m.Meta, m.ModTime, seg, parts[bucket+"\x00"+key]), nil); err != nil {
				return false, err
			}
			objects++
		}
	}
	// Data files without metadata: the old store made their metadata on
	// first read; their key is their path.
	err = filepath.WalkDir(oldBuckets, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(oldBuckets, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		bucket, key, ok := strings.Cut(rel, "/")
		if claimed[rel] || !ok {
			return nil
		}
		seg, err := s.importFile(p)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		mod := time.Now()
		if info != nil {
			mod = info.ModTime()
		}
		objects++
		return s.commitObject(bucket, key, convertedObject(nil, mod, seg, parts[bucket+"\x00"+key]), nil)
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	// Every object is indexed and its data linked: the old layout goes.
	for _, p := range []string{oldMeta, oldBuckets, etagsPath} {
		if err := os.RemoveAll(p); err != nil {
			return false, err
		}
	}
	s.log.Info("embedded store: converted the previous store's data", "objects", objects, "already_lost", lost)
	return true, nil
}

func (s *Store) ensureBucket(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketsBkt)
		if b.Get([]byte(name)) != nil {
			return nil
		}
		if _, err := tx.CreateBucketIfNotExists(objBkt(name)); err != nil {
			return err
		}
		return putJSON(b, []byte(name), map[string]any{"created": s.now().UTC()})
	})
}

// importFile gives an old data file a name in this store (a hard link, or
// a copy) and returns its segment, with the MD5 of its bytes.
func (s *Store) importFile(path string) (segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return segment{}, err
	}
	defer f.Close()
	h := newMD5()
	st, err := f.Stat()
	if err != nil {
		return segment{}, err
	}
	id := newID()
	dst := s.dataPath(id)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return segment{}, err
	}
	if err := os.Link(path, dst); err != nil {
		return s.writeData(f, st.Size())
	}
	if _, err := copyTo(h, f); err != nil {
		return segment{}, err
	}
	return segment{File: id, Size: st.Size(), MD5: hex.EncodeToString(h.Sum(nil))}, nil
}

// convertedObject is the record of an object of the previous store.
func convertedObject(meta map[string]string, mod time.Time, seg segment, mp struct {
	Parts int    `json:"parts"`
	MD5   string `json:"md5"`
}) *object {
	obj := &object{Size: seg.Size, ETag: seg.MD5, Modified: mod.UTC(), Header: map[string]string{}, Segments: []segment{seg}}
	if t, err := http.ParseTime(meta["Last-Modified"]); err == nil {
		obj.Modified = t.UTC()
	}
	for k, v := range meta {
		ck := http.CanonicalHeaderKey(k)
		// The old store kept every x-amz-* request header; only user
		// metadata and content headers are the object's.
		if strings.HasPrefix(ck, "X-Amz-Meta-") || ck != "X-Amz-Storage-Class" && containsHeader(ck) {
			obj.Header[ck] = v
		}
	}
	if mp.Parts > 0 && mp.MD5 == seg.MD5 {
		// gofakes3 showed "<md5 of the body>-N" (etags.go); keep it.
		obj.ETag = seg.MD5 + "-" + fmt.Sprint(mp.Parts)
		obj.Parts = mp.Parts
	}
	return obj
}

func containsHeader(h string) bool {
	for _, s := range storedHeaders {
		if s == h {
			return true
		}
	}
	return false
}

// gofakes3Key recovers the key a metadata file of the previous store is
// for: its name is the key with "/" and "\" written "_", then "-" and the
// hex FNV-128a of the real key, so each "_" is tried as "_", "/" and "\"
// (depth first, the hash state carried along) until the hash matches.
func gofakes3Key(name string) (string, bool) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || len(name)-i-1 != 32 {
		return "", false
	}
	want, err := hex.DecodeString(name[i+1:])
	if err != nil {
		return "", false
	}
	enc := name[:i]
	if strings.Count(enc, "_") > 16 {
		return "", false
	}
	var found string
	var try func(prefix string, rest string) bool
	try = func(prefix, rest string) bool {
		j := strings.IndexByte(rest, '_')
		if j < 0 {
			h := fnv.New128a()
			h.Write([]byte(prefix + rest))
			if string(h.Sum(nil)) == string(want) {
				found = prefix + rest
				return true
			}
			return false
		}
		for _, c := range []string{"/", "_", `\`} {
			if try(prefix+rest[:j]+c, rest[j+1:]) {
				return true
			}
		}
		return false
	}
	if try("", enc) {
		return found, true
	}
	return "", false
}
