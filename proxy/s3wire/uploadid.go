package s3wire

import (
	"encoding/base64"
	"net/http"
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

//
// An upload to a write-only (asymmetric) key, whose pending header the
// instance that completes it cannot open with the KMS, also carries the
// pending header's object key (FORMAT.md section 12.3):
//
//	s3seal3a~<base64url(upload identity)>~<base64url(KMS key id) or empty>~<base64url(object key)>~<the store's upload id>
//
// The client learns a key that seals only the metadata it sent itself
// (and, once finalized, the manifest of its own parts).
//
// An upload whose parts are compressed (its object header has the
// compressed flag, FORMAT.md section 12.2.3) names the algorithm:
//
//	s3seal3z~<algorithm>~<base64url(upload identity)>~<base64url(KMS key id) or empty>~<the store's upload id>
//
// A client that alters or adds the algorithm only breaks its own upload:
// CompleteMultipartUpload refuses compressed parts unless the sealed
// pending header has the flag.

const (
	uploadIDPrefix     = "s3seal2~"
	uploadIDPrefixAsym = "s3seal3a~"
	uploadIDPrefixComp = "s3seal3z~"
)

// UploadRef is what a client upload id says.
type UploadRef struct {
	StoreID string
	Upload  []byte // nil: not an s3seal2 id
	KeyID   string
	// PendingKey is the pending header's object key of an upload to a
	// write-only key ("s3seal3a~" ids); nil otherwise.
	PendingKey []byte
	// Compress is the algorithm the parts of an upload to a bucket with
	// compression on are compressed with ("s3seal3z~" ids); "" otherwise.
	Compress envelope.Algorithm
	Client   string // the id as the client sent it
}

// Mapped reports whether the store knows the upload by another id than
// the client.
func (u UploadRef) Mapped() bool { return u.StoreID != u.Client }

// ClientUploadID is the upload id the client sees.
func ClientUploadID(storeID string, upload []byte, keyID string) string {
	enc := base64.RawURLEncoding
	return uploadIDPrefix + enc.EncodeToString(upload) + "~" + enc.EncodeToString([]byte(keyID)) + "~" + storeID
}

// ClientUploadIDPending is ClientUploadID for an upload to a write-only
// key: it also carries the pending header's object key.
func ClientUploadIDPending(storeID string, upload []byte, keyID string, pendingKey []byte) string {
	enc := base64.RawURLEncoding
	return uploadIDPrefixAsym + enc.EncodeToString(upload) + "~" + enc.EncodeToString([]byte(keyID)) + "~" +
		enc.EncodeToString(pendingKey) + "~" + storeID
}

// ClientUploadIDCompressed is ClientUploadID for an upload whose parts
// are compressed with alg.
func ClientUploadIDCompressed(storeID string, upload []byte, keyID string, alg envelope.Algorithm) string {
	enc := base64.RawURLEncoding
	return uploadIDPrefixComp + string(alg) + "~" + enc.EncodeToString(upload) + "~" + enc.EncodeToString([]byte(keyID)) + "~" + storeID
}

// ParseUploadID splits a client upload id. A foreign id is kept whole as
// the store's id.
func ParseUploadID(client string) UploadRef {
	ref := UploadRef{StoreID: client, Client: client}
	if rest, ok := strings.CutPrefix(client, uploadIDPrefixComp); ok {
		alg, rest, ok := strings.Cut(rest, "~")
		if !ok || alg != string(envelope.AlgS2) && alg != string(envelope.AlgZstd) {
			return ref
		}
		r := ParseUploadID(uploadIDPrefix + rest)
		if r.Upload == nil {
			return ref
		}
		r.Compress, r.Client = envelope.Algorithm(alg), client
		return r
	}
	if rest, ok := strings.CutPrefix(client, uploadIDPrefixAsym); ok {
		fields := strings.SplitN(rest, "~", 4)
		if len(fields) != 4 {
			return ref
		}
		enc := base64.RawURLEncoding
		upload, err1 := enc.DecodeString(fields[0])
		key, err2 := enc.DecodeString(fields[1])
		pk, err3 := enc.DecodeString(fields[2])
		if err1 != nil || err2 != nil || err3 != nil || len(upload) != envelope.UploadIDSize || len(pk) != envelope.KeySize {
			return ref
		}
		return UploadRef{StoreID: fields[3], Upload: upload, KeyID: string(key), PendingKey: pk, Client: client}
	}
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
	return UploadRef{StoreID: fields[2], Upload: upload, KeyID: string(key), Client: client}
}

// ErrForeignUpload answers an UploadPart or CompleteMultipartUpload whose
// upload id s3seal did not hand out: S3's answer for an unknown upload, so
// clients start a new one.
var ErrForeignUpload = NewError(http.StatusNotFound, "NoSuchUpload",
	"The specified upload does not exist. s3seal upload ids carry the upload's binding (s3seal2~...); "+
		"ids from ListMultipartUploads or from s3seal before format version 2 cannot be uploaded to: start a new upload.")

// RedactUploadID returns a write-only upload id ("s3seal3a~") with the
// object key it carries replaced by REDACTED, for logs: that key opens the
// upload's sealed metadata. ok is false for any other id, which carries no
// key.
func RedactUploadID(id string) (string, bool) {
	if !strings.HasPrefix(id, uploadIDPrefixAsym) {
		return id, false
	}
	f := strings.SplitN(id, "~", 5)
	if len(f) < 4 {
		return uploadIDPrefixAsym + "REDACTED", true
	}
	f[3] = "REDACTED"
	return strings.Join(f, "~"), true
}
