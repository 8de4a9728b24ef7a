package proxy

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/s3seal/s3seal/envelope"
)

// Upload ids. S3 takes no SSE headers on UploadPart and has no call that
// returns an upload's metadata, and the proxy keeps no state between
// requests, so what every part must be sealed with travels in the upload id
// the client is given (FORMAT.md, version 2):
//
//	s3seal2~<base64url(upload identity)>~<base64url(KMS key id) or empty>~<the store's upload id>
//
// The upload identity binds every part to this upload; the KMS key is the
// one the client chose at CreateMultipartUpload (empty: the bucket's). The
// id needs no integrity protection: a client that alters its identity only
// makes its own upload fail at CompleteMultipartUpload, when the parts are
// checked against the identity sealed in the object header; a key named in
// it is checked against the identity's allowed keys like any SSE header.
//
// Ids without the prefix (the store's own, as ListMultipartUploads shows
// them, or "s3seal1~" ids of s3seal before format version 2) can be listed,
// aborted and listed for parts, but not uploaded to or completed: their
// parts could not be bound to the upload.

const uploadIDPrefix = "s3seal2~"

// uploadRef is what a client upload id says.
type uploadRef struct {
	storeID string
	upload  []byte // nil: not an s3seal2 id
	keyID   string
	client  string // the id as the client sent it
}

// clientUploadID is the upload id the client sees.
func clientUploadID(storeID string, upload []byte, keyID string) string {
	enc := base64.RawURLEncoding
	return uploadIDPrefix + enc.EncodeToString(upload) + "~" + enc.EncodeToString([]byte(keyID)) + "~" + storeID
}

// parseUploadID splits a client upload id. A foreign id is kept whole as
// the store's id.
func parseUploadID(client string) uploadRef {
	ref := uploadRef{storeID: client, client: client}
	rest, ok := strings.CutPrefix(client, uploadIDPrefix)
	if !ok {
		return ref
	}
	fields := strings.SplitN(rest, "~", 3)
	if len(fields) != 3 {
		return ref
	}
	enc := base64.RawURLEncoding
	upload, err1 := enc.DecodeString(fields[0])
	key, err2 := enc.DecodeString(fields[1])
	if err1 != nil || err2 != nil || len(upload) != envelope.UploadIDSize {
		return ref
	}
	return uploadRef{storeID: fields[2], upload: upload, keyID: string(key), client: client}
}

// mapUploadID rewrites the request's uploadId parameter to the store's id
// and remembers what the client's id carried. It runs after
// authentication: the client signed the id it sent.
func mapUploadID(r *request) {
	client := r.t.Query.Get("uploadId")
	if client == "" {
		return
	}
	r.upload = parseUploadID(client)
	if r.upload.storeID == client {
		return
	}
	r.t.Query.Set("uploadId", r.upload.storeID)
	parts := strings.Split(r.t.RawQuery, "&")
	for i, p := range parts {
		if name, _, _ := strings.Cut(p, "="); name == "uploadId" {
			parts[i] = "uploadId=" + url.QueryEscape(r.upload.storeID)
		}
	}
	r.t.RawQuery = strings.Join(parts, "&")
}

// errForeignUpload answers an UploadPart or CompleteMultipartUpload whose
// upload id s3seal did not hand out: S3's answer for an unknown upload, so
// clients start a new one.
func errForeignUpload() *Error {
	return s3err(http.StatusNotFound, "NoSuchUpload",
		"The specified upload does not exist. s3seal upload ids carry the upload's binding (s3seal2~...); "+
			"ids from ListMultipartUploads or from s3seal before format version 2 cannot be uploaded to: start a new upload.")
}
