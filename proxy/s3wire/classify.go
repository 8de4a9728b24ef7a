package s3wire

import (
	"net/http"
	"net/url"
	"strings"
)

// Target is what a request addresses.
type Target struct {
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

// ParseTarget splits a path-style request URI into bucket, key and query.
func ParseTarget(requestURI string) (*Target, error) {
	rawPath, rawQuery, _ := strings.Cut(requestURI, "?")
	if !strings.HasPrefix(rawPath, "/") {
		return nil, InvalidRequest("Invalid request URI")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, InvalidArgument("Invalid query string")
	}
	t := &Target{RawPath: rawPath, SignedPath: rawPath, RawQuery: rawQuery, Query: q}
	rest := rawPath[1:]
	rawBucket, rawKey, hasKey := strings.Cut(rest, "/")
	if t.Bucket, err = url.PathUnescape(rawBucket); err != nil {
		return nil, InvalidRequest("Invalid bucket name encoding")
	}
	if hasKey && rawKey != "" {
		if t.Key, err = url.PathUnescape(rawKey); err != nil {
			return nil, InvalidRequest("Invalid object key encoding")
		}
	}
	return t, nil
}

// VirtualHosted resolves a virtual-hosted-style request to bucket under
// its path-style target; SignedPath stays the path the client signed.
func VirtualHosted(bucket, requestURI string) (*Target, error) {
	rawPath, rawQuery, _ := strings.Cut(requestURI, "?")
	if !strings.HasPrefix(rawPath, "/") {
		return nil, InvalidRequest("Invalid request URI")
	}
	pathStyle := "/" + bucket
	if rawPath != "/" {
		pathStyle += rawPath
	}
	if rawQuery != "" {
		pathStyle += "?" + rawQuery
	}
	t, err := ParseTarget(pathStyle)
	if err != nil {
		return nil, err
	}
	t.SignedPath = rawPath
	return t, nil
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

// Classify decides the S3 operation from method, target and whether an
// x-amz-copy-source header is present. Anything that would carry object
// data the proxy cannot encrypt maps to Unsupported, whose Spec refuses it.
func Classify(method string, t *Target, hasCopySource bool) Op {
	q := t.Query
	has := func(name string) bool { _, ok := q[name]; return ok }
	switch {
	case t.Bucket == "":
		if method == http.MethodGet {
			return ListBuckets
		}
		return Unsupported
	case t.Key == "":
		switch method {
		case http.MethodGet:
			switch {
			case has("versions"):
				return ListVersions
			case has("uploads"):
				return ListMultipartUploads
			case len(q) == 0 || has("list-type") || onlyListParams(q):
				return ListObjects
			}
			return BucketRead
		case http.MethodHead:
			return BucketRead
		case http.MethodPut:
			if len(q) == 0 || hasAny(q, bucketConfigSubresources) {
				return BucketWrite
			}
		case http.MethodDelete:
			if len(q) == 0 || hasAny(q, bucketConfigSubresources) {
				return BucketWrite
			}
		case http.MethodPost:
			if has("delete") {
				return DeleteObjects
			}
			// A POST to a bucket without a subresource is a browser form
			// upload: the handler parses the form and encrypts its file.
			if len(q) == 0 {
				return PostObject
			}
		}
		return Unsupported
	}
	switch method {
	case http.MethodGet:
		switch {
		case has("uploadId"):
			return ListParts
		case hasAny(q, objectReadSubresources):
			return ObjectRead
		case has("attributes"):
			return GetAttributes
		case has("select"):
			return Unsupported
		}
		return GetObject
	case http.MethodHead:
		return HeadObject
	case http.MethodPut:
		switch {
		case has("uploadId") && has("partNumber"):
			if hasCopySource {
				return UploadPartCopy
			}
			return UploadPart
		case hasAny(q, objectConfigSubresources):
			return ObjectWrite
		case hasCopySource:
			return CopyObject
		case len(q) == 0 || onlyVersionParams(q):
			return PutObject
		}
	case http.MethodDelete:
		if has("uploadId") {
			return AbortMultipart
		}
		if hasAny(q, objectConfigSubresources) {
			return ObjectWrite
		}
		return DeleteObject
	case http.MethodPost:
		switch {
		case has("uploads"):
			return CreateMultipart
		case has("uploadId"):
			return CompleteMultipart
		}
	}
	return Unsupported
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
