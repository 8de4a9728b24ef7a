package embedstore

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

const (
	maxKeyLen      = 1024
	maxMetaSize    = 8 << 10 // user metadata bytes, names and values
	minPartSize    = 5 << 20
	maxParts       = 10000
	maxDeleteKeys  = 1000
	defaultMaxKeys = 1000
	s3xmlns        = "http://s3.amazonaws.com/doc/2006-03-01/"
	timeFormat     = "2006-01-02T15:04:05.000Z"
)

// ServeHTTP serves the S3 API. Requests are not authenticated: the store
// is reachable only in-process (Listener).
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.route(w, r); err != nil {
		writeError(w, r, err)
	}
}

// request is one parsed request.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	bucket string
	key    string
	q      url.Values
}

// decodeXML reads the request's XML body (at most limit bytes) into v; a
// body that does not decode is MalformedXML.
func (q *request) decodeXML(v any, limit int64) error {
	body, err := io.ReadAll(io.LimitReader(q.r.Body, limit))
	if err != nil {
		return err
	}
	if xml.Unmarshal(body, v) != nil {
		return errMalformedXML
	}
	return nil
}

func (q *request) has(name string) bool { _, ok := q.q[name]; return ok }

// only refuses any query parameter but the named ones, x-id (which SDKs
// add) and response-* overrides where allowed: an unknown parameter may be
// a subresource this store does not implement, and must never be taken
// for a plain object request.
func (q *request) only(names ...string) error {
	for k := range q.q {
		if k == "x-id" || slices.Contains(names, k) || slices.Contains(names, "response-*") && strings.HasPrefix(k, "response-") {
			continue
		}
		return errNotImplemented(q.r.Method + " ?" + k)
	}
	return nil
}

func (s *Store) route(w http.ResponseWriter, r *http.Request) error {
	if !strings.HasPrefix(r.URL.Path, "/") {
		return errInvalidRequest("invalid request path")
	}
	q := &request{w: w, r: r, q: r.URL.Query()}
	q.bucket, q.key, _ = strings.Cut(r.URL.Path[1:], "/")
	if ce := r.Header.Get("Content-Encoding"); strings.Contains(strings.ToLower(ce), "aws-chunked") ||
		strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		return errNotImplemented("aws-chunked request bodies")
	}
	m := r.Method
	switch {
	case q.bucket == "":
		if m == http.MethodGet {
			if err := q.only(); err != nil {
				return err
			}
			return s.listBuckets(q)
		}
	case q.key == "":
		return s.routeBucket(q)
	default:
		return s.routeObject(q)
	}
	return errNotImplemented(m + " " + r.URL.Path)
}

// bucketConfigNotFound are bucket subresources a store answers for a
// bucket without that configuration; clients probe some of them.
var bucketConfigNotFound = map[string]*s3Error{
	"policy":            newErr(http.StatusNotFound, "NoSuchBucketPolicy", "The bucket policy does not exist"),
	"tagging":           newErr(http.StatusNotFound, "NoSuchTagSet", "The TagSet does not exist"),
	"cors":              newErr(http.StatusNotFound, "NoSuchCORSConfiguration", "The CORS configuration does not exist"),
	"lifecycle":         newErr(http.StatusNotFound, "NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist"),
	"website":           newErr(http.StatusNotFound, "NoSuchWebsiteConfiguration", "The specified bucket does not have a website configuration"),
	"encryption":        newErr(http.StatusNotFound, "ServerSideEncryptionConfigurationNotFoundError", "The server side encryption configuration was not found"),
	"object-lock":       newErr(http.StatusNotFound, "ObjectLockConfigurationNotFoundError", "Object Lock configuration does not exist for this bucket"),
	"replication":       newErr(http.StatusNotFound, "ReplicationConfigurationNotFoundError", "The replication configuration was not found"),
	"ownershipControls": newErr(http.StatusNotFound, "OwnershipControlsNotFoundError", "The bucket ownership controls were not found"),
	"publicAccessBlock": newErr(http.StatusNotFound, "NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found"),
}

func (s *Store) routeBucket(q *request) error {
	switch q.r.Method {
	case http.MethodPut:
		if err := q.only(); err != nil {
			return err
		}
		return s.createBucket(q)
	case http.MethodDelete:
		if err := q.only(); err != nil {
			return err
		}
		return s.deleteBucket(q)
	case http.MethodHead:
		if err := q.only(); err != nil {
			return err
		}
		if err := s.bucketExists(q.bucket); err != nil {
			return err
		}
		q.w.Header().Set("X-Amz-Bucket-Region", "us-east-1")
		q.w.WriteHeader(http.StatusOK)
		return nil
	case http.MethodPost:
		if q.has("delete") {
			if err := q.only("delete"); err != nil {
				return err
			}
			return s.deleteObjects(q)
		}
	case http.MethodGet:
		switch {
		case q.has("location"):
			if err := q.only("location"); err != nil {
				return err
			}
			if err := s.bucketExists(q.bucket); err != nil {
				return err
			}
			return writeXML(q.w, http.StatusOK, struct {
				XMLName xml.Name `xml:"LocationConstraint"`
				NS      string   `xml:"xmlns,attr"`
			}{NS: s3xmlns})
		case q.has("versioning"):
			if err := q.only("versioning"); err != nil {
				return err
			}
			if err := s.bucketExists(q.bucket); err != nil {
				return err
			}
			return writeXML(q.w, http.StatusOK, struct {
				XMLName xml.Name `xml:"VersioningConfiguration"`
				NS      string   `xml:"xmlns,attr"`
			}{NS: s3xmlns})
		case q.has("acl"):
			if err := q.only("acl"); err != nil {
				return err
			}
			if err := s.bucketExists(q.bucket); err != nil {
				return err
			}
			return writeACL(q.w)
		case q.has("uploads"):
			return s.listUploads(q)
		case q.has("versions"):
			return s.listObjects(q, listVersions)
		case q.q.Get("list-type") == "2":
			return s.listObjects(q, listV2)
		}
		for name, e := range bucketConfigNotFound {
			if q.has(name) {
				if err := q.only(name); err != nil {
					return err
				}
				if err := s.bucketExists(q.bucket); err != nil {
					return err
				}
				return e
			}
		}
		return s.listObjects(q, listV1)
	}
	return errNotImplemented(q.r.Method + " on a bucket with ?" + q.r.URL.RawQuery)
}

func (s *Store) routeObject(q *request) error {
	if len(q.key) > maxKeyLen {
		return errKeyTooLong
	}
	if !utf8.ValidString(q.key) {
		return errInvalidArgument("Object keys must be UTF-8")
	}
	copySource := q.r.Header.Get("X-Amz-Copy-Source") != ""
	switch q.r.Method {
	case http.MethodPut:
		switch {
		case q.has("uploadId") || q.has("partNumber"):
			if err := q.only("uploadId", "partNumber"); err != nil {
				return err
			}
			if copySource {
				return s.uploadPartCopy(q)
			}
			return s.uploadPart(q)
		case q.has("tagging"):
			if err := q.only("tagging", "versionId"); err != nil {
				return err
			}
			return s.putTagging(q)
		}
		if err := q.only("versionId"); err != nil {
			return err
		}
		if copySource {
			return s.copyObject(q)
		}
		return s.putObject(q)
	case http.MethodGet, http.MethodHead:
		switch {
		case q.r.Method == http.MethodGet && q.has("uploadId"):
			if err := q.only("uploadId", "max-parts", "part-number-marker", "encoding-type"); err != nil {
				return err
			}
			return s.listParts(q)
		case q.r.Method == http.MethodGet && q.has("tagging"):
			if err := q.only("tagging", "versionId"); err != nil {
				return err
			}
			return s.getTagging(q)
		case q.r.Method == http.MethodGet && q.has("attributes"):
			if err := q.only("attributes", "versionId"); err != nil {
				return err
			}
			return s.getAttributes(q)
		case q.r.Method == http.MethodGet && q.has("acl"):
			if err := q.only("acl", "versionId"); err != nil {
				return err
			}
			if _, err := s.lookup(q); err != nil {
				return err
			}
			return writeACL(q.w)
		}
		if err := q.only("versionId", "partNumber", "response-*"); err != nil {
			return err
		}
		return s.getObject(q)
	case http.MethodDelete:
		switch {
		case q.has("uploadId"):
			if err := q.only("uploadId"); err != nil {
				return err
			}
			return s.abortUpload(q)
		case q.has("tagging"):
			if err := q.only("tagging", "versionId"); err != nil {
				return err
			}
			return s.deleteTagging(q)
		}
		if err := q.only("versionId"); err != nil {
			return err
		}
		return s.deleteObject(q)
	case http.MethodPost:
		switch {
		case q.has("uploads"):
			if err := q.only("uploads"); err != nil {
				return err
			}
			return s.createUpload(q)
		case q.has("uploadId"):
			if err := q.only("uploadId"); err != nil {
				return err
			}
			return s.completeUpload(q)
		}
	}
	return errNotImplemented(q.r.Method + " on an object with ?" + q.r.URL.RawQuery)
}

func writeXML(w http.ResponseWriter, status int, v any) error {
	body, err := xml.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(body)
	return nil
}

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

var storeOwner = owner{ID: "s3seal", DisplayName: "s3seal"}

func writeACL(w http.ResponseWriter) error {
	type grantee struct {
		XMLNS string `xml:"xmlns:xsi,attr"`
		Type  string `xml:"xsi:type,attr"`
		owner
	}
	return writeXML(w, http.StatusOK, struct {
		XMLName xml.Name `xml:"AccessControlPolicy"`
		NS      string   `xml:"xmlns,attr"`
		Owner   owner
		Grants  []struct {
			Grantee    grantee
			Permission string
		} `xml:"AccessControlList>Grant"`
	}{NS: s3xmlns, Owner: storeOwner, Grants: []struct {
		Grantee    grantee
		Permission string
	}{{Grantee: grantee{XMLNS: "http://www.w3.org/2001/XMLSchema-instance", Type: "CanonicalUser", owner: storeOwner}, Permission: "FULL_CONTROL"}}})
}

// ---- buckets ----

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (s *Store) bucketExists(name string) error {
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketsBkt).Get([]byte(name)) == nil {
			return errNoSuchBucket
		}
		return nil
	})
}

func (s *Store) listBuckets(q *request) error {
	type bucket struct {
		Name         string
		CreationDate string
	}
	var out []bucket
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketsBkt).ForEach(func(k, v []byte) error {
			var rec struct {
				Created time.Time `json:"created"`
			}
			_ = jsonUnmarshal(v, &rec)
			out = append(out, bucket{Name: string(k), CreationDate: rec.Created.UTC().Format(timeFormat)})
			return nil
		})
	})
	if err != nil {
		return err
	}
	return writeXML(q.w, http.StatusOK, struct {
		XMLName xml.Name `xml:"ListAllMyBucketsResult"`
		NS      string   `xml:"xmlns,attr"`
		Owner   owner
		Buckets []bucket `xml:"Buckets>Bucket"`
	}{NS: s3xmlns, Owner: storeOwner, Buckets: out})
}

func (s *Store) createBucket(q *request) error {
	if !bucketName.MatchString(q.bucket) || strings.Contains(q.bucket, "..") {
		return errInvalidBucketName
	}
	io.Copy(io.Discard, io.LimitReader(q.r.Body, 64<<10)) // CreateBucketConfiguration: the region is ours
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketsBkt)
		if b.Get([]byte(q.bucket)) != nil {
			return errBucketExists
		}
		if _, err := tx.CreateBucketIfNotExists(objBkt(q.bucket)); err != nil {
			return err
		}
		return putJSON(b, []byte(q.bucket), map[string]any{"created": s.now().UTC()})
	})
	if err != nil {
		return err
	}
	q.w.Header().Set("Location", "/"+q.bucket)
	q.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Store) deleteBucket(q *request) error {
	var parts []segment
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketsBkt).Get([]byte(q.bucket)) == nil {
			return errNoSuchBucket
		}
		if k, _ := tx.Bucket(objBkt(q.bucket)).Cursor().First(); k != nil {
			return errBucketNotEmpty
		}
		// Uploads in progress go with the bucket.
		ups := tx.Bucket(uploadsBkt)
		var ids [][]byte
		err := ups.ForEach(func(k, v []byte) error {
			var u upload
			if err := jsonUnmarshal(v, &u); err != nil {
				return err
			}
			if u.Bucket == q.bucket {
				ids = append(ids, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			segs, err := dropUpload(tx, string(id))
			if err != nil {
				return err
			}
			parts = append(parts, segs...)
		}
		if err := tx.DeleteBucket(objBkt(q.bucket)); err != nil {
			return err
		}
		return tx.Bucket(bucketsBkt).Delete([]byte(q.bucket))
	})
	if err != nil {
		return err
	}
	s.removeData(parts)
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- objects ----

// storedHeaders are the request headers an object keeps besides its user
// metadata (x-amz-meta-*).
var storedHeaders = []string{
	"Content-Type", "Content-Disposition", "Content-Encoding", "Content-Language", "Cache-Control", "Expires",
	"X-Amz-Website-Redirect-Location", "X-Amz-Storage-Class",
}

// requestHeaders picks the headers an object stores from a request.
func requestHeaders(h http.Header) (map[string]string, error) {
	out := map[string]string{}
	size := 0
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		switch {
		case strings.HasPrefix(ck, "X-Amz-Meta-"):
			v := strings.Join(vs, ",")
			size += len(ck) - len("X-Amz-Meta-") + len(v)
			out[ck] = v
		case slices.Contains(storedHeaders, ck):
			out[ck] = strings.Join(vs, ",")
		}
	}
	if sc := out["X-Amz-Storage-Class"]; sc == "STANDARD" {
		delete(out, "X-Amz-Storage-Class")
	}
	if size > maxMetaSize {
		return nil, errMetadataTooLarge
	}
	return out, nil
}

// requestTags validates x-amz-tagging and returns it normalized.
func requestTags(h http.Header) (string, error) {
	v := h.Get("X-Amz-Tagging")
	if v == "" {
		return "", nil
	}
	tags, err := url.ParseQuery(v)
	if err != nil || len(tags) > 10 {
		return "", errInvalidArgument("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
	}
	return tags.Encode(), nil
}

// lookup reads the record of the request's object.
func (s *Store) lookup(q *request) (*object, error) {
	if v := q.q.Get("versionId"); q.has("versionId") && v != "null" {
		return nil, errInvalidArgument("Invalid version id specified")
	}
	var obj *object
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		obj, err = readObject(tx, q.bucket, q.key)
		return err
	})
	return obj, err
}

func readObject(tx *bolt.Tx, bucket, key string) (*object, error) {
	b := tx.Bucket(objBkt(bucket))
	if b == nil {
		return nil, errNoSuchBucket
	}
	obj, ok, err := getJSON[object](b, []byte(key))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNoSuchKey
	}
	return obj, nil
}

// writeConditions are the preconditions of a conditional PUT.
func writeConditions(h http.Header, current *object) error {
	if v := h.Get("If-None-Match"); v != "" && current != nil && etagMatches(v, current.ETag) {
		return errPrecondition
	}
	if v := h.Get("If-Match"); v != "" {
		if current == nil {
			return errNoSuchKey
		}
		if !etagMatches(v, current.ETag) {
			return errPrecondition
		}
	}
	return nil
}

// etagMatches reports whether an If-Match style list names etag.
func etagMatches(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || strings.Trim(t, `"`) == etag {
			return true
		}
	}
	return false
}

// commitObject indexes obj at bucket/key if cond accepts the current one,
// and removes the data of the record it replaces. On failure the new data
// is removed.
func (s *Store) commitObject(bucket, key string, obj *object, cond func(current *object) error) error {
	var old []segment
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(objBkt(bucket))
		if b == nil {
			return errNoSuchBucket
		}
		cur, ok, err := getJSON[object](b, []byte(key))
		if err != nil {
			return err
		}
		if !ok {
			cur = nil
		}
		if cond != nil {
			if err := cond(cur); err != nil {
				return err
			}
		}
		if cur != nil {
			old = cur.Segments
		}
		return putJSON(b, []byte(key), obj)
	})
	if err != nil {
		s.removeData(obj.Segments)
		return err
	}
	s.removeData(old)
	return nil
}

func (s *Store) putObject(q *request) error {
	if q.r.ContentLength < 0 {
		return errMissingLength
	}
	hdr, err := requestHeaders(q.r.Header)
	if err != nil {
		return err
	}
	tags, err := requestTags(q.r.Header)
	if err != nil {
		return err
	}
	if err := s.bucketExists(q.bucket); err != nil {
		return err
	}
	seg, err := s.writeBody(q)
	if err != nil {
		return err
	}
	obj := &object{Size: seg.Size, ETag: seg.MD5, Modified: s.now().UTC(), Header: hdr, Tags: tags, Segments: []segment{seg}}
	if err := s.commitObject(q.bucket, q.key, obj, func(cur *object) error { return writeConditions(q.r.Header, cur) }); err != nil {
		return err
	}
	q.w.Header().Set("ETag", `"`+obj.ETag+`"`)
	q.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Store) deleteObject(q *request) error {
	if v := q.q.Get("versionId"); q.has("versionId") && v != "null" {
		return errInvalidArgument("Invalid version id specified")
	}
	if _, err := s.deleteKey(q.bucket, q.key); err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteKey removes bucket/key if it exists.
func (s *Store) deleteKey(bucket, key string) (bool, error) {
	var old *object
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(objBkt(bucket))
		if b == nil {
			return errNoSuchBucket
		}
		cur, ok, err := getJSON[object](b, []byte(key))
		if err != nil || !ok {
			return err
		}
		old = cur
		return b.Delete([]byte(key))
	})
	if err != nil || old == nil {
		return false, err
	}
	s.removeData(old.Segments)
	return true, nil
}

func (s *Store) deleteObjects(q *request) error {
	var req struct {
		Quiet   bool
		Objects []struct {
			Key       string
			VersionId string
		} `xml:"Object"`
	}
	if err := q.decodeXML(&req, 4<<20); err != nil {
		return err
	}
	if len(req.Objects) > maxDeleteKeys {
		return errMalformedXML
	}
	if err := s.bucketExists(q.bucket); err != nil {
		return err
	}
	type deleted struct{ Key string }
	type failed struct{ Key, Code, Message string }
	var res struct {
		XMLName xml.Name  `xml:"DeleteResult"`
		NS      string    `xml:"xmlns,attr"`
		Deleted []deleted `xml:"Deleted"`
		Errors  []failed  `xml:"Error"`
	}
	res.NS = s3xmlns
	for _, o := range req.Objects {
		if o.VersionId != "" && o.VersionId != "null" {
			res.Errors = append(res.Errors, failed{o.Key, "NoSuchVersion", "The specified version does not exist."})
			continue
		}
		if _, err := s.deleteKey(q.bucket, o.Key); err != nil {
			var e *s3Error
			if !errors.As(err, &e) {
				e = newErr(http.StatusInternalServerError, "InternalError", err.Error())
			}
			res.Errors = append(res.Errors, failed{o.Key, e.Code, e.Message})
			continue
		}
		if !req.Quiet {
			res.Deleted = append(res.Deleted, deleted{o.Key})
		}
	}
	return writeXML(q.w, http.StatusOK, res)
}

// openSegments opens the data files of segs, retrying through a concurrent
// overwrite (which may remove them between the index read and the open).
func (s *Store) openObject(q *request) (*object, []*os.File, error) {
	for attempt := 0; ; attempt++ {
		obj, err := s.lookup(q)
		if err != nil {
			return nil, nil, err
		}
		files, err := s.openSegments(obj.Segments)
		if err == nil {
			return obj, files, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return nil, nil, err
		}
	}
}

func (s *Store) openSegments(segs []segment) ([]*os.File, error) {
	files := make([]*os.File, 0, len(segs))
	for _, g := range segs {
		f, err := os.Open(s.dataPath(g.File))
		if err != nil {
			closeAll(files)
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// segmentReader reads [off, off+n) of an object made of segments.
func segmentReader(segs []segment, files []*os.File, off, n int64) io.Reader {
	var rs []io.Reader
	for i, g := range segs {
		if n <= 0 {
			break
		}
		if off >= g.Size {
			off -= g.Size
			continue
		}
		take := min(g.Size-off, n)
		rs = append(rs, io.NewSectionReader(files[i], off, take))
		n -= take
		off = 0
	}
	return io.MultiReader(rs...)
}

// readConditions evaluates GET/HEAD preconditions: a failed If-Match or
// If-Unmodified-Since is 412, a matching If-None-Match or an unchanged
// If-Modified-Since is 304.
func readConditions(h http.Header, obj *object) (int, bool) {
	mod := obj.Modified.Truncate(time.Second)
	if v := h.Get("If-Match"); v != "" {
		if !etagMatches(v, obj.ETag) {
			return http.StatusPreconditionFailed, false
		}
	} else if t, err := http.ParseTime(h.Get("If-Unmodified-Since")); err == nil && mod.After(t) {
		return http.StatusPreconditionFailed, false
	}
	if v := h.Get("If-None-Match"); v != "" {
		if etagMatches(v, obj.ETag) {
			return http.StatusNotModified, false
		}
	} else if t, err := http.ParseTime(h.Get("If-Modified-Since")); err == nil && !mod.After(t) {
		return http.StatusNotModified, false
	}
	return 0, true
}

// parseRange parses a single "bytes=" range against size. ok is false for
// a header to ignore (absent, malformed, several ranges); err is set when
// it cannot be satisfied.
func parseRange(v string, size int64) (off, n int64, ok bool, err error) {
	spec, found := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false, nil
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" {
		suffix, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil {
			return 0, 0, false, nil
		}
		if suffix == 0 {
			return 0, 0, true, errInvalidRange
		}
		suffix = min(suffix, size)
		return size - suffix, suffix, true, nil
	}
	first, perr := strconv.ParseInt(a, 10, 64)
	if perr != nil || first < 0 {
		return 0, 0, false, nil
	}
	last := size - 1
	if b != "" {
		if last, perr = strconv.ParseInt(b, 10, 64); perr != nil || last < first {
			return 0, 0, false, nil
		}
		last = min(last, size-1)
	}
	if first >= size {
		return 0, 0, true, errInvalidRange
	}
	return first, last - first + 1, true, nil
}

func (s *Store) getObject(q *request) error {
	obj, files, err := s.openObject(q)
	if err != nil {
		return err
	}
	defer closeAll(files)
	h := q.w.Header()
	setObjectHeaders(h, obj)
	if st, ok := readConditions(q.r.Header, obj); !ok {
		if st == http.StatusPreconditionFailed {
			h.Del("Content-Type")
			return errPrecondition
		}
		q.w.WriteHeader(st)
		return nil
	}
	for k, vs := range q.q {
		if name, ok := responseOverrides[k]; ok {
			h.Set(name, vs[0])
		}
	}
	off, n, status := int64(0), obj.Size, http.StatusOK
	if v := q.q.Get("partNumber"); v != "" {
		pn, err := strconv.Atoi(v)
		parts := max(obj.Parts, 1)
		if err != nil || pn < 1 || pn > maxParts {
			return errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
		}
		if pn > parts {
			return newErr(http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber", "The requested partnumber is not satisfiable")
		}
		if obj.Parts > 0 && len(obj.Segments) != obj.Parts {
			return errNotImplemented("partNumber on a multipart object converted from the previous embedded store")
		}
		if obj.Parts > 0 {
			for i := 0; i < pn-1; i++ {
				off += obj.Segments[i].Size
			}
			n = obj.Segments[pn-1].Size
			status = http.StatusPartialContent
			h.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(obj.Parts))
		}
	} else if v := q.r.Header.Get("Range"); v != "" {
		o, l, ok, err := parseRange(v, obj.Size)
		if err != nil {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", obj.Size))
			return err
		}
		if ok {
			off, n, status = o, l, http.StatusPartialContent
		}
	}
	if status == http.StatusPartialContent {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, obj.Size))
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	q.w.WriteHeader(status)
	if q.r.Method == http.MethodHead {
		return nil
	}
	_, _ = io.Copy(q.w, segmentReader(obj.Segments, files, off, n))
	return nil
}

var responseOverrides = map[string]string{
	"response-content-type": "Content-Type", "response-content-language": "Content-Language",
	"response-expires": "Expires", "response-cache-control": "Cache-Control",
	"response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding",
}

func setObjectHeaders(h http.Header, obj *object) {
	h.Set("Content-Type", "binary/octet-stream")
	for k, v := range obj.Header {
		h[k] = []string{v}
	}
	h.Set("ETag", `"`+obj.ETag+`"`)
	h.Set("Last-Modified", obj.Modified.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	if obj.Tags != "" {
		tags, _ := url.ParseQuery(obj.Tags)
		h.Set("X-Amz-Tagging-Count", strconv.Itoa(len(tags)))
	}
}

// ---- copies ----

// copySource parses x-amz-copy-source: "bucket/key" or "/bucket/key",
// URL-encoded, with an optional ?versionId.
func copySource(v string) (bucket, key string, err error) {
	raw, query, _ := strings.Cut(v, "?")
	dec, uerr := url.PathUnescape(strings.TrimPrefix(raw, "/"))
	bucket, key, ok := strings.Cut(dec, "/")
	if uerr != nil || !ok || bucket == "" || key == "" {
		return "", "", errInvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	if query != "" {
		qv, err := url.ParseQuery(query)
		if err != nil || qv.Has("versionId") && qv.Get("versionId") != "null" {
			return "", "", errInvalidArgument("Invalid version id specified")
		}
	}
	return bucket, key, nil
}

// copyConditions evaluates the x-amz-copy-source-if-* headers.
func copyConditions(h http.Header, src *object) error {
	mod := src.Modified.Truncate(time.Second)
	if v := h.Get("X-Amz-Copy-Source-If-Match"); v != "" {
		if !etagMatches(v, src.ETag) {
			return errPrecondition
		}
	} else if t, err := http.ParseTime(h.Get("X-Amz-Copy-Source-If-Unmodified-Since")); err == nil && mod.After(t) {
		return errPrecondition
	}
	if v := h.Get("X-Amz-Copy-Source-If-None-Match"); v != "" {
		if etagMatches(v, src.ETag) {
			return errPrecondition
		}
	} else if t, err := http.ParseTime(h.Get("X-Amz-Copy-Source-If-Modified-Since")); err == nil && !mod.After(t) {
		return errPrecondition
	}
	return nil
}

// linkSource reads the copy source's record and gives each of its data
// files a new name for the copy.
func (s *Store) linkSource(h http.Header) (*object, []segment, error) {
	bucket, key, err := copySource(h.Get("X-Amz-Copy-Source"))
	if err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		var src *object
		if err := s.db.View(func(tx *bolt.Tx) error {
			var err error
			src, err = readObject(tx, bucket, key)
			return err
		}); err != nil {
			return nil, nil, err
		}
		if err := copyConditions(h, src); err != nil {
			return nil, nil, err
		}
		var linked []segment
		for _, g := range src.Segments {
			l, err := s.linkData(g)
			if err != nil {
				s.removeData(linked)
				linked = nil
				if errors.Is(err, fs.ErrNotExist) && attempt < 3 {
					break
				}
				return nil, nil, err
			}
			linked = append(linked, l)
		}
		if len(linked) == len(src.Segments) {
			return src, linked, nil
		}
	}
}

func (s *Store) copyObject(q *request) error {
	if err := s.bucketExists(q.bucket); err != nil {
		return err
	}
	sb, sk, err := copySource(q.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	directive := strings.ToUpper(q.r.Header.Get("X-Amz-Metadata-Directive"))
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return errInvalidArgument("Unknown metadata directive.")
	}
	tagDirective := strings.ToUpper(q.r.Header.Get("X-Amz-Tagging-Directive"))
	if sb == q.bucket && sk == q.key && directive != "REPLACE" {
		return errInvalidRequest("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	src, segs, err := s.linkSource(q.r.Header)
	if err != nil {
		return err
	}
	obj := &object{Size: src.Size, ETag: src.ETag, Modified: s.now().UTC(), Header: src.Header, Tags: src.Tags, Segments: segs}
	if directive == "REPLACE" {
		if obj.Header, err = requestHeaders(q.r.Header); err != nil {
			s.removeData(segs)
			return err
		}
	}
	if tagDirective == "REPLACE" {
		if obj.Tags, err = requestTags(q.r.Header); err != nil {
			s.removeData(segs)
			return err
		}
	}
	if src.Parts > 0 {
		// As in S3, a copy made by CopyObject is one object, not parts:
		// its ETag is the MD5 of its bytes.
		if obj.ETag, err = s.md5Of(segs); err != nil {
			s.removeData(segs)
			return err
		}
	}
	if err := s.commitObject(q.bucket, q.key, obj, nil); err != nil {
		return err
	}
	return writeXML(q.w, http.StatusOK, struct {
		XMLName      xml.Name `xml:"CopyObjectResult"`
		NS           string   `xml:"xmlns,attr"`
		LastModified string
		ETag         string
	}{NS: s3xmlns, LastModified: obj.Modified.Format(timeFormat), ETag: `"` + obj.ETag + `"`})
}

func (s *Store) md5Of(segs []segment) (string, error) {
	files, err := s.openSegments(segs)
	if err != nil {
		return "", err
	}
	defer closeAll(files)
	var total int64
	for _, g := range segs {
		total += g.Size
	}
	h := newMD5()
	if _, err := io.Copy(h, segmentReader(segs, files, 0, total)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ---- tagging ----

type tagSet struct {
	XMLName xml.Name `xml:"Tagging"`
	NS      string   `xml:"xmlns,attr,omitempty"`
	Tags    []struct {
		Key   string
		Value string
	} `xml:"TagSet>Tag"`
}

func (s *Store) getTagging(q *request) error {
	obj, err := s.lookup(q)
	if err != nil {
		return err
	}
	out := tagSet{NS: s3xmlns}
	tags, _ := url.ParseQuery(obj.Tags)
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out.Tags = append(out.Tags, struct{ Key, Value string }{k, tags.Get(k)})
	}
	return writeXML(q.w, http.StatusOK, out)
}

func (s *Store) putTagging(q *request) error {
	var in tagSet
	if err := q.decodeXML(&in, 64<<10); err != nil {
		return err
	}
	v := url.Values{}
	for _, t := range in.Tags {
		if v.Has(t.Key) {
			return newErr(http.StatusBadRequest, "InvalidTag", "Cannot provide multiple Tags with the same key")
		}
		v.Set(t.Key, t.Value)
	}
	if len(v) > 10 {
		return newErr(http.StatusBadRequest, "BadRequest", "Object tags cannot be greater than 10")
	}
	if err := s.setTags(q, v.Encode()); err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Store) deleteTagging(q *request) error {
	if err := s.setTags(q, ""); err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Store) setTags(q *request, tags string) error {
	if v := q.q.Get("versionId"); q.has("versionId") && v != "null" {
		return errInvalidArgument("Invalid version id specified")
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		obj, err := readObject(tx, q.bucket, q.key)
		if err != nil {
			return err
		}
		obj.Tags = tags
		return putJSON(tx.Bucket(objBkt(q.bucket)), []byte(q.key), obj)
	})
}

// ---- attributes ----

func (s *Store) getAttributes(q *request) error {
	obj, err := s.lookup(q)
	if err != nil {
		return err
	}
	if st, ok := readConditions(q.r.Header, obj); !ok {
		if st == http.StatusPreconditionFailed {
			return errPrecondition
		}
		q.w.WriteHeader(st)
		return nil
	}
	asked := map[string]bool{}
	for _, v := range q.r.Header.Values("X-Amz-Object-Attributes") {
		for _, a := range strings.Split(v, ",") {
			asked[strings.ToLower(strings.TrimSpace(a))] = true
		}
	}
	if len(asked) == 0 {
		return errInvalidArgument("Invalid attribute name specified.")
	}
	type partXML struct {
		PartNumber int
		Size       int64
	}
	type partsXML struct {
		IsTruncated          bool
		MaxParts             int
		NextPartNumberMarker int
		PartNumberMarker     int
		Parts                []partXML `xml:"Part"`
		PartsCount           int
	}
	var res struct {
		XMLName      xml.Name  `xml:"GetObjectAttributesResponse"`
		NS           string    `xml:"xmlns,attr"`
		ETag         string    `xml:",omitempty"`
		ObjectParts  *partsXML `xml:",omitempty"`
		StorageClass string    `xml:",omitempty"`
		ObjectSize   *int64    `xml:",omitempty"`
	}
	res.NS = s3xmlns
	if asked["etag"] {
		res.ETag = obj.ETag
	}
	if asked["storageclass"] {
		res.StorageClass = cmpOr(obj.Header["X-Amz-Storage-Class"], "STANDARD")
	}
	if asked["objectsize"] {
		res.ObjectSize = &obj.Size
	}
	if asked["objectparts"] && obj.Parts > 0 && len(obj.Segments) != obj.Parts {
		res.ObjectParts = &partsXML{PartsCount: obj.Parts}
	} else if asked["objectparts"] && obj.Parts > 0 {
		maxP, _ := strconv.Atoi(q.r.Header.Get("X-Amz-Max-Parts"))
		if maxP <= 0 || maxP > 1000 {
			maxP = 1000
		}
		marker, _ := strconv.Atoi(q.r.Header.Get("X-Amz-Part-Number-Marker"))
		p := &partsXML{MaxParts: maxP, PartNumberMarker: marker, PartsCount: obj.Parts}
		for i := marker; i < obj.Parts; i++ {
			if len(p.Parts) == maxP {
				p.IsTruncated = true
				break
			}
			p.Parts = append(p.Parts, partXML{PartNumber: i + 1, Size: obj.Segments[i].Size})
			p.NextPartNumberMarker = i + 1
		}
		res.ObjectParts = p
	}
	q.w.Header().Set("Last-Modified", obj.Modified.UTC().Format(http.TimeFormat))
	return writeXML(q.w, http.StatusOK, res)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
