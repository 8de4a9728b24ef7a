package proxy

import (
	"encoding/base64"
	"net/url"
	"strings"
)

// Upload ids. S3 takes no SSE headers on UploadPart, and the proxy keeps
// no state between requests, so a KMS key the client chose at
// CreateMultipartUpload travels in the upload id the client is given:
//
//	s3seal1~<base64url(key id)>~<the store's upload id>
//
// Uploads under the bucket's own key keep the store's id unchanged. The id
// needs no integrity protection: an UploadPart naming another key in it is
// checked against the identity's allowed keys like any SSE header.
// ListMultipartUploads shows the store's ids; an upload resumed from such
// a listing seals its remaining parts under the bucket's key.

const uploadIDPrefix = "s3seal1~"

// clientUploadID is the upload id the client sees for an upload whose
// parts are sealed under keyID ("" or the bucket's key: the store's id).
func clientUploadID(storeID, keyID string) string {
	if keyID == "" {
		return storeID
	}
	return uploadIDPrefix + base64.RawURLEncoding.EncodeToString([]byte(keyID)) + "~" + storeID
}

// parseUploadID splits a client upload id into the store's id and the key
// it names (empty for a plain store id).
func parseUploadID(client string) (storeID, keyID string) {
	rest, ok := strings.CutPrefix(client, uploadIDPrefix)
	if !ok {
		return client, ""
	}
	enc, storeID, ok := strings.Cut(rest, "~")
	if !ok {
		return client, ""
	}
	key, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(key) == 0 {
		return client, ""
	}
	return storeID, string(key)
}

// mapUploadID rewrites the request's uploadId parameter to the store's id
// and remembers the key it carried. It runs after authentication: the
// client signed the id it sent.
func mapUploadID(r *request) {
	client := r.t.Query.Get("uploadId")
	storeID, keyID := parseUploadID(client)
	if keyID == "" {
		return
	}
	r.uploadKey, r.clientUploadID = keyID, client
	r.t.Query.Set("uploadId", storeID)
	parts := strings.Split(r.t.RawQuery, "&")
	for i, p := range parts {
		if name, _, _ := strings.Cut(p, "="); name == "uploadId" {
			parts[i] = "uploadId=" + url.QueryEscape(storeID)
		}
	}
	r.t.RawQuery = strings.Join(parts, "&")
}
