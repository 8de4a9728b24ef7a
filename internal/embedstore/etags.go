package embedstore

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/johannesboyne/gofakes3"
)

// gofakes3 answers CompleteMultipartUpload with an S3-style "<hex>-N" ETag
// but afterwards shows the object with the MD5 of its body, as if it had
// been a single PUT. s3seal, like every S3 client that cares, reads the
// part count N from the ETag (a multipart object's plaintext size is its
// stored size minus N times the per-part overhead). partETags restores S3's
// behaviour: it remembers N for each completed upload, keyed by the body
// MD5 so that a later overwrite makes the entry stale, and rewrites the
// ETag of HEAD, GET, listings and the Complete response to "<md5>-N".
type partETags struct {
	next    http.Handler
	backend gofakes3.Backend
	path    string

	mu      sync.Mutex
	entries map[string]partEntry // bucket + "\x00" + key
}

type partEntry struct {
	Parts int    `json:"parts"`
	MD5   string `json:"md5"` // hex MD5 of the stored body, as gofakes3 reports it
}

func newPartETags(next http.Handler, backend gofakes3.Backend, path string) (*partETags, error) {
	p := &partETags{next: next, backend: backend, path: path, entries: map[string]partEntry{}}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &p.entries); err != nil {
			return nil, err
		}
	case !os.IsNotExist(err):
		return nil, err
	}
	return p, nil
}

func (p *partETags) lookup(bucket, key, md5 string) (partEntry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[bucket+"\x00"+key]
	return e, ok && e.MD5 == md5
}

func (p *partETags) record(bucket, key string, e partEntry) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entries[bucket+"\x00"+key] = e
	b, err := json.Marshal(p.entries)
	if err != nil {
		return err
	}
	tmp := p.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p.path)
}

var (
	multipartTag = regexp.MustCompile(`-([0-9]+)"?$`)
	conditionTag = regexp.MustCompile(`("[0-9a-f]{32})-[0-9]+"`)
	etagElement  = regexp.MustCompile(`<ETag>([^<]*)</ETag>`)
	keyElement   = regexp.MustCompile(`<Key>([^<]*)</Key>`)
	contents     = regexp.MustCompile(`(?s)<Contents>.*?</Contents>`)
)

func (p *partETags) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Conditions name the "<md5>-N" ETags this wrapper shows; gofakes3
	// compares them with the plain MD5 it knows.
	for _, h := range []string{"If-Match", "If-None-Match", "X-Amz-Copy-Source-If-Match", "X-Amz-Copy-Source-If-None-Match"} {
		if v := r.Header.Get(h); v != "" {
			r.Header.Set(h, conditionTag.ReplaceAllString(v, `$1"`))
		}
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && key != "" && q.Has("uploadId") && r.Header.Get("X-Amz-Copy-Source") != "":
		p.uploadPartCopy(w, r)
	case r.Method == http.MethodPost && key != "" && q.Has("uploadId"):
		p.complete(w, r, bucket, key)
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && key != "" && objectRead(q):
		ew := &etagWriter{ResponseWriter: w, fix: func(h http.Header) {
			md5 := strings.Trim(h.Get("ETag"), `"`)
			if e, ok := p.lookup(bucket, key, md5); ok {
				h.Set("ETag", `"`+md5+"-"+itoa(e.Parts)+`"`)
			}
		}}
		p.next.ServeHTTP(ew, r)
		if !ew.wrote { // a bodiless 200 (HEAD) never calls WriteHeader
			ew.WriteHeader(http.StatusOK)
		}
	case r.Method == http.MethodGet && key == "" && bucket != "" && (len(q) == 0 || q.Has("list-type") || q.Has("prefix") || q.Has("marker")):
		rec := httptest.NewRecorder()
		p.next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusNotFound {
			// gofakes3's filesystem backend answers NoSuchBucket for a
			// prefix no object lives under; S3 answers an empty listing.
			if ok, err := p.backend.BucketExists(bucket); err == nil && ok {
				rec = httptest.NewRecorder()
				rec.Header().Set("Content-Type", "application/xml")
				rec.Code = http.StatusOK
				body = emptyListing(bucket, q)
			}
		}
		if rec.Code == http.StatusOK {
			body = contents.ReplaceAllFunc(body, func(c []byte) []byte {
				km, em := keyElement.FindSubmatch(c), etagElement.FindSubmatch(c)
				if km == nil || em == nil {
					return c
				}
				md5 := strings.Trim(html.UnescapeString(string(em[1])), `"`)
				if e, ok := p.lookup(bucket, html.UnescapeString(string(km[1])), md5); ok {
					return bytes.Replace(c, em[0], []byte("<ETag>&#34;"+md5+"-"+itoa(e.Parts)+"&#34;</ETag>"), 1)
				}
				return c
			})
		}
		copyRecorded(w, rec, body)
	default:
		p.next.ServeHTTP(w, r)
	}
}

func (p *partETags) complete(w http.ResponseWriter, r *http.Request, bucket, key string) {
	rec := httptest.NewRecorder()
	p.next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if rec.Code == http.StatusOK {
		if m := etagElement.FindSubmatch(body); m != nil {
			if n := multipartTag.FindStringSubmatch(html.UnescapeString(string(m[1]))); n != nil {
				if obj, err := p.backend.HeadObject(bucket, key); err == nil {
					md5 := hex.EncodeToString(obj.Hash)
					if err := p.record(bucket, key, partEntry{Parts: atoi(n[1]), MD5: md5}); err == nil {
						body = bytes.Replace(body, m[0], []byte("<ETag>&#34;"+md5+"-"+n[1]+"&#34;</ETag>"), 1)
					}
				}
			}
		}
	}
	copyRecorded(w, rec, body)
}

func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", itoa(len(body)))
	w.WriteHeader(rec.Code)
	w.Write(body)
}

// etagWriter lets fix adjust headers just before they are sent.
type etagWriter struct {
	http.ResponseWriter
	fix   func(http.Header)
	wrote bool
}

func (e *etagWriter) WriteHeader(code int) {
	if e.wrote {
		return
	}
	e.wrote = true
	e.fix(e.Header())
	e.ResponseWriter.WriteHeader(code)
}

func (e *etagWriter) Write(b []byte) (int, error) {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	return e.ResponseWriter.Write(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// emptyListing is the ListObjects(V2) answer for a prefix with no objects.
func emptyListing(bucket string, q url.Values) []byte {
	var b strings.Builder
	esc := func(v string) string { return html.EscapeString(v) }
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
	b.WriteString("<Name>" + esc(bucket) + "</Name>")
	enc := q.Get("encoding-type") == "url"
	for _, f := range []struct{ param, elem string }{{"prefix", "Prefix"}, {"delimiter", "Delimiter"}, {"start-after", "StartAfter"}, {"marker", "Marker"}} {
		if v := q.Get(f.param); v != "" || f.param == "prefix" {
			if enc {
				v = url.QueryEscape(v)
			}
			b.WriteString("<" + f.elem + ">" + esc(v) + "</" + f.elem + ">")
		}
	}
	if q.Get("list-type") == "2" {
		b.WriteString("<KeyCount>0</KeyCount>")
	}
	if enc {
		b.WriteString("<EncodingType>url</EncodingType>")
	}
	b.WriteString("<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>")
	return []byte(b.String())
}

// objectRead reports whether a GET/HEAD of an object reads the object (as
// opposed to a subresource such as ?tagging).
func objectRead(q url.Values) bool {
	for k := range q {
		switch {
		case k == "x-id", k == "versionId", k == "partNumber", strings.HasPrefix(k, "response-"):
		default:
			return false
		}
	}
	return true
}
