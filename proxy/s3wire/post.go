package s3wire

import (
	"encoding/xml"
	"net/http"
	"net/textproto"
	"strings"
)

// Browser form uploads (PostObject): what the form's fields mean as the
// request headers of a PutObject, and the answers S3 gives.

// postHeaderFields are the form fields S3 takes as the object's headers,
// besides x-amz-meta-* and the SSE fields.
var postHeaderFields = []string{
	"cache-control", "content-type", "content-disposition", "content-encoding", "content-language",
	"expires", "x-amz-storage-class", "x-amz-website-redirect-location", "x-amz-tagging",
	"x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold",
	HeaderSSE, HeaderSSEKeyID, HeaderSSEContext,
	"x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key",
	"x-amz-server-side-encryption-customer-key-md5", "x-amz-server-side-encryption-bucket-key-enabled",
}

// FormHeaders maps a form's fields (lower-case names) to the headers a PUT
// of the same object would carry.
func FormHeaders(fields map[string]string) http.Header {
	h := http.Header{}
	for k, v := range fields {
		if k == "acl" {
			h.Set("X-Amz-Acl", v)
			continue
		}
		if strings.HasPrefix(k, "x-amz-meta-") || containsFold(postHeaderFields, k) {
			h.Set(textproto.CanonicalMIMEHeaderKey(k), v)
		}
	}
	return h
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// EscapePath is the path-style request path of an object: each byte of
// bucket and key but the unreserved ones and "/" percent-encoded, the
// form SigV4 signs as is.
func EscapePath(bucket, key string) string {
	var b strings.Builder
	b.WriteByte('/')
	b.WriteString(bucket)
	b.WriteByte('/')
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// PostResponse is the document of a 201 answer to a form upload.
type PostResponse struct {
	XMLName  xml.Name `xml:"PostResponse"`
	Location string
	Bucket   string
	Key      string
	ETag     string
}

// Errors of form uploads.
var (
	ErrMalformedPOST = NewError(http.StatusBadRequest, "MalformedPOSTRequest",
		"The body of your POST request is not well-formed multipart/form-data.")
	ErrPOSTNotMultipart = NewError(http.StatusPreconditionFailed, "PreconditionFailed",
		"At least one of the pre-conditions you specified did not hold").With("Condition", "Bucket POST must be of the enclosure-type multipart/form-data")
	ErrPOSTFieldsTooLarge = NewError(http.StatusBadRequest, "MaxPostPreDataLengthExceeded",
		"Your POST request fields preceding the upload file were too large.")
	ErrPOSTNoFile = InvalidArgument("POST requires exactly one file upload per request.")
	ErrPOSTNoKey  = InvalidArgument("Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.")
)
