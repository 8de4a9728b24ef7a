package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// op is an S3 operation, decided from method, path and query alone.
type op int

const (
	opUnsupported op = iota
	opListBuckets
	opBucketRead    // bodiless bucket request forwarded as is (HEAD, location, versioning, ...)
	opBucketWrite   // bucket create/delete or configuration with a small XML body
	opListObjects   // V1 and V2: sizes and ETags rewritten
	opListVersions  // ListObjectVersions: sizes and ETags rewritten
	opDeleteObjects // POST ?delete
	opPutObject
	opCopyObject
	opGetObject
	opHeadObject
	opDeleteObject
	opObjectRead  // object subresources without object data: ?tagging, ?acl, ...
	opObjectWrite // object subresource configuration bodies: ?tagging, ?acl, ...
	opCreateMultipart
	opUploadPart
	opUploadPartCopy
	opCompleteMultipart
	opAbortMultipart
	opListParts
	opListMultipartUploads
	opGetAttributes
)

var opNames = map[op]string{
	opUnsupported: "Unsupported", opListBuckets: "ListBuckets", opBucketRead: "BucketRead",
	opBucketWrite: "BucketWrite", opListObjects: "ListObjects", opListVersions: "ListObjectVersions",
	opDeleteObjects: "DeleteObjects", opPutObject: "PutObject", opCopyObject: "CopyObject",
	opGetObject: "GetObject", opHeadObject: "HeadObject", opDeleteObject: "DeleteObject",
	opObjectRead: "ObjectRead", opObjectWrite: "ObjectWrite", opCreateMultipart: "CreateMultipartUpload",
	opUploadPart: "UploadPart", opUploadPartCopy: "UploadPartCopy", opCompleteMultipart: "CompleteMultipartUpload",
	opAbortMultipart: "AbortMultipartUpload", opListParts: "ListParts", opListMultipartUploads: "ListMultipartUploads",
	opGetAttributes: "GetObjectAttributes",
}

func (o op) String() string { return opNames[o] }

// target is what a request addresses.
type target struct {
	Bucket string
	Key    string // decoded object key ("" for bucket and service requests)
	// RawPath is the path exactly as the client sent it; it is forwarded
	// unchanged because S3 keys may contain "//", "./" or "%2F", and
	// re-encoding would change both the key and the signature.
	RawPath string
	// SignedPath is the path the client signed: RawPath for path-style
	// requests, the path without the bucket for virtual-hosted ones.
	SignedPath string
	RawQuery   string
	Query      url.Values
}

// bucketConfigSubresources are bucket subresources whose PUT/DELETE bodies
// are configuration, never object data, so they are safe to forward.
var bucketConfigSubresources = []string{
	"acl", "cors", "lifecycle", "policy", "tagging", "versioning", "object-lock",
	"ownershipControls", "publicAccessBlock", "notification", "website", "logging",
	"requestPayment", "accelerate", "encryption", "replication", "intelligent-tiering",
	"analytics", "metrics", "inventory",
}

// objectConfigSubresources are object subresources that carry no object data.
var objectConfigSubresources = []string{"acl", "tagging", "retention", "legal-hold"}

// objectReadSubresources may be read through without decryption.
var objectReadSubresources = []string{"acl", "tagging", "retention", "legal-hold", "torrent"}

func hasAny(q url.Values, names []string) bool {
	for _, n := range names {
		if _, ok := q[n]; ok {
			return true
		}
	}
	return false
}

// parseTarget splits a path-style request URI into bucket, key and query.
func parseTarget(requestURI string) (*target, error) {
	rawPath, rawQuery, _ := strings.Cut(requestURI, "?")
	if !strings.HasPrefix(rawPath, "/") {
		return nil, errInvalidRequest("Invalid request URI")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errInvalidArgument("Invalid query string")
	}
	t := &target{RawPath: rawPath, SignedPath: rawPath, RawQuery: rawQuery, Query: q}
	rest := rawPath[1:]
	rawBucket, rawKey, hasKey := strings.Cut(rest, "/")
	if t.Bucket, err = url.PathUnescape(rawBucket); err != nil {
		return nil, errInvalidRequest("Invalid bucket name encoding")
	}
	if hasKey && rawKey != "" {
		if t.Key, err = url.PathUnescape(rawKey); err != nil {
			return nil, errInvalidRequest("Invalid object key encoding")
		}
	}
	return t, nil
}

// classify decides the S3 operation. Anything that would carry object data
// the proxy cannot encrypt maps to opUnsupported and is refused.
func classify(method string, t *target, hasCopySource bool) op {
	q := t.Query
	has := func(name string) bool { _, ok := q[name]; return ok }
	switch {
	case t.Bucket == "":
		if method == http.MethodGet {
			return opListBuckets
		}
		return opUnsupported
	case t.Key == "":
		switch method {
		case http.MethodGet:
			switch {
			case has("versions"):
				return opListVersions
			case has("uploads"):
				return opListMultipartUploads
			case len(q) == 0 || has("list-type") || onlyListParams(q):
				return opListObjects
			}
			return opBucketRead
		case http.MethodHead:
			return opBucketRead
		case http.MethodPut:
			if len(q) == 0 || hasAny(q, bucketConfigSubresources) {
				return opBucketWrite
			}
		case http.MethodDelete:
			if len(q) == 0 || hasAny(q, bucketConfigSubresources) {
				return opBucketWrite
			}
		case http.MethodPost:
			if has("delete") {
				return opDeleteObjects
			}
			// A POST to a bucket without ?delete is a browser form upload:
			// its body is object data we would have to parse to encrypt.
		}
		return opUnsupported
	}
	switch method {
	case http.MethodGet:
		switch {
		case has("uploadId"):
			return opListParts
		case hasAny(q, objectReadSubresources):
			return opObjectRead
		case has("attributes"):
			return opGetAttributes
		case has("select"):
			return opUnsupported
		}
		return opGetObject
	case http.MethodHead:
		return opHeadObject
	case http.MethodPut:
		switch {
		case has("uploadId") && has("partNumber"):
			if hasCopySource {
				return opUploadPartCopy
			}
			return opUploadPart
		case hasAny(q, objectConfigSubresources):
			return opObjectWrite
		case hasCopySource:
			return opCopyObject
		case len(q) == 0 || onlyVersionParams(q):
			return opPutObject
		}
	case http.MethodDelete:
		if has("uploadId") {
			return opAbortMultipart
		}
		if hasAny(q, objectConfigSubresources) {
			return opObjectWrite
		}
		return opDeleteObject
	case http.MethodPost:
		switch {
		case has("uploads"):
			return opCreateMultipart
		case has("uploadId"):
			return opCompleteMultipart
		}
	}
	return opUnsupported
}

// listParams are the query parameters of ListObjects V1/V2.
var listParams = map[string]bool{
	"prefix": true, "delimiter": true, "marker": true, "max-keys": true, "encoding-type": true,
	"list-type": true, "continuation-token": true, "start-after": true, "fetch-owner": true,
	"allow-unordered": true, "x-id": true,
}

func onlyListParams(q url.Values) bool {
	for k := range q {
		if !listParams[k] && !isAuthParam(k) {
			return false
		}
	}
	return true
}

// onlyVersionParams allows a PUT whose query holds nothing but presigned
// auth parameters, header stand-ins, or harmless ones.
func onlyVersionParams(q url.Values) bool {
	for k := range q {
		if !isAuthParam(k) && !isHeaderParam(k) && k != "x-id" {
			return false
		}
	}
	return true
}

// isHeaderParam reports query parameters that stand in for request headers
// in a presigned URL (botocore's Signature V2 URLs carry Content-Type and
// x-amz-meta-* this way); the verifier signs them, and the proxy treats
// them as the headers they name.
func isHeaderParam(name string) bool {
	n := strings.ToLower(name)
	return n == "content-type" || n == "content-md5" || strings.HasPrefix(n, "x-amz-") && !isAuthParam(name)
}

// isAuthParam reports query parameters that carry the client's presigned
// signature; they are never forwarded upstream.
func isAuthParam(name string) bool {
	switch name {
	case "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
		"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
		"X-Amz-Content-Sha256", "AWSAccessKeyId", "Signature", "Expires":
		return true
	}
	return false
}
