package embedstore

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// uploadPartCopy serves UploadPartCopy, which gofakes3 does not implement
// (it takes the request for an UploadPart without a body): it reads the
// source range from the backend and hands it to gofakes3 as an UploadPart.
// s3seal copies multipart objects part by part with it, and completes every
// multipart upload with such a copy (FORMAT.md, version 2). Parts are held
// in memory, as gofakes3 holds every part until the upload completes.
func (p *partETags) uploadPartCopy(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
	}
	srcPath, srcQuery, _ := strings.Cut(r.Header.Get("X-Amz-Copy-Source"), "?")
	srcPath, err := url.PathUnescape(strings.TrimPrefix(srcPath, "/"))
	if err != nil {
		fail(http.StatusBadRequest, "InvalidArgument", "bad x-amz-copy-source")
		return
	}
	if q, _ := url.ParseQuery(srcQuery); q.Get("versionId") != "" {
		fail(http.StatusNotImplemented, "NotImplemented", "versioned copy sources are not supported by the embedded store")
		return
	}
	srcBucket, srcKey, ok := strings.Cut(srcPath, "/")
	if !ok {
		fail(http.StatusBadRequest, "InvalidArgument", "bad x-amz-copy-source")
		return
	}
	var rng *gofakes3.ObjectRangeRequest
	if v := r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		var first, last int64
		if _, err := fmt.Sscanf(v, "bytes=%d-%d", &first, &last); err != nil || first < 0 || last < first {
			fail(http.StatusBadRequest, "InvalidArgument", "bad x-amz-copy-source-range")
			return
		}
		rng = &gofakes3.ObjectRangeRequest{Start: first, End: last}
	}
	obj, err := p.backend.GetObject(srcBucket, srcKey, rng)
	if err != nil {
		fail(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	defer obj.Contents.Close()
	if v := r.Header.Get("X-Amz-Copy-Source-If-Match"); v != "" && strings.Trim(v, `"`) != hex.EncodeToString(obj.Hash) {
		fail(http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
		return
	}
	if rng != nil && (obj.Range == nil || obj.Range.Start != rng.Start || obj.Range.Length != rng.End-rng.Start+1) {
		fail(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
		return
	}
	data, err := io.ReadAll(obj.Contents)
	if err != nil {
		fail(http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	put := r.Clone(r.Context())
	for k := range put.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-copy-source") {
			put.Header.Del(k)
		}
	}
	put.Body, put.ContentLength = io.NopCloser(bytes.NewReader(data)), int64(len(data))
	put.Header.Set("Content-Length", fmt.Sprint(len(data)))
	rec := httptest.NewRecorder()
	p.next.ServeHTTP(rec, put)
	if rec.Code != http.StatusOK {
		copyRecorded(w, rec, rec.Body.Bytes())
		return
	}
	res, _ := xml.Marshal(struct {
		XMLName      xml.Name `xml:"CopyPartResult"`
		LastModified string   `xml:"LastModified"`
		ETag         string   `xml:"ETag"`
	}{LastModified: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), ETag: rec.Header().Get("ETag")})
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	w.Write(res)
}
