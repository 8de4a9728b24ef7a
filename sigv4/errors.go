package sigv4

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an authentication failure with the S3 error code and HTTP status
// AWS S3 returns for it. Render it as the S3 error XML: Code, Message, then
// the non-empty fields below and Details, in order.
type Error struct {
	Code    string
	Message string
	Status  int

	// For SignatureDoesNotMatch and InvalidAccessKeyId, as S3 sends them
	// (AWSAccessKeyId, SignatureProvided, StringToSign, CanonicalRequest).
	AccessKeyID       string
	SignatureProvided string
	StringToSign      string
	CanonicalRequest  string

	// Details are the other elements S3 adds for some codes: Region,
	// HeadersNotSigned, RequestTime, ServerTime, MaxAllowedSkewMilliseconds,
	// X-Amz-Expires, Expires.
	Details []Detail

	err error // underlying cause (a read error), if any
}

// Detail is one extra element of an S3 error document.
type Detail struct {
	Name, Value string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sigv4: ")
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.err != nil {
		b.WriteString(": ")
		b.WriteString(e.err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.err }

// Is reports whether e matches target: same Code, and same Message unless
// target's Message is empty. So errors.Is(err, ErrSignatureDoesNotMatch)
// matches any signature mismatch, and errors.Is(err, &Error{Code:
// "AccessDenied"}) any AccessDenied.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// detail returns the value of the named detail, or "".
func (e *Error) detail(name string) string {
	for _, d := range e.Details {
		if d.Name == name {
			return d.Value
		}
	}
	return ""
}

// Sentinel errors, for errors.Is. Functions return fresh copies carrying
// details; compare with errors.Is, never ==. Sentinels without a Message
// (ErrBadDigest, ErrInvalidChunkSize) match every error of their code; the
// errors returned carry the message.
var (
	ErrMissingAuth = &Error{Code: "AccessDenied", Message: "Access Denied", Status: http.StatusForbidden}

	ErrSignatureDoesNotMatch = &Error{Code: "SignatureDoesNotMatch", Status: http.StatusForbidden,
		Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	ErrInvalidAccessKeyID = &Error{Code: "InvalidAccessKeyId", Status: http.StatusForbidden,
		Message: "The AWS Access Key Id you provided does not exist in our records."}
	ErrRequestTimeTooSkewed = &Error{Code: "RequestTimeTooSkewed", Status: http.StatusForbidden,
		Message: "The difference between the request time and the current time is too large."}
	ErrExpired = &Error{Code: "AccessDenied", Status: http.StatusForbidden,
		Message: "Request has expired"}
	ErrNotYetValid = &Error{Code: "AccessDenied", Status: http.StatusForbidden,
		Message: "Request is not valid yet"}
	ErrMissingDate = &Error{Code: "AccessDenied", Status: http.StatusForbidden,
		Message: "AWS authentication requires a valid Date or x-amz-date header"}
	ErrUnsignedHeaders = &Error{Code: "AccessDenied", Status: http.StatusForbidden,
		Message: "There were headers present in the request which were not signed"}
	ErrUnsupportedAlgorithm = &Error{Code: "InvalidRequest", Status: http.StatusBadRequest,
		Message: "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."}
	ErrMultipleAuth = &Error{Code: "InvalidArgument", Status: http.StatusBadRequest,
		Message: "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified"}
	ErrInvalidContentSHA256 = &Error{Code: "InvalidArgument", Status: http.StatusBadRequest,
		Message: "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value."}
	ErrUnsupportedPayload = &Error{Code: "NotImplemented", Status: http.StatusNotImplemented,
		Message: "A header you provided implies functionality that is not implemented"}

	// Body errors.
	ErrContentSHA256Mismatch = &Error{Code: "XAmzContentSHA256Mismatch", Status: http.StatusBadRequest,
		Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	ErrIncompleteBody = &Error{Code: "IncompleteBody", Status: http.StatusBadRequest,
		Message: "You did not provide the number of bytes specified by the Content-Length HTTP header."}
	ErrMalformedChunk = &Error{Code: "InvalidRequest", Status: http.StatusBadRequest,
		Message: "Malformed aws-chunked encoding."}
	ErrChunkSignature = &Error{Code: "SignatureDoesNotMatch", Status: http.StatusForbidden,
		Message: "The chunk signature we calculated does not match the signature you provided."}
	ErrTrailerSignature = &Error{Code: "SignatureDoesNotMatch", Status: http.StatusForbidden,
		Message: "The trailer signature we calculated does not match the signature you provided."}
	ErrMalformedTrailer = &Error{Code: "MalformedTrailerError", Status: http.StatusBadRequest,
		Message: "The request contained trailing data that was not well-formed or did not conform to our published schema."}
	ErrInvalidChunkSize   = &Error{Code: "InvalidChunkSizeError", Status: http.StatusForbidden}
	ErrBadDigest          = &Error{Code: "BadDigest", Status: http.StatusBadRequest}
	ErrContentMD5Mismatch = &Error{Code: "BadDigest", Status: http.StatusBadRequest,
		Message: "The Content-MD5 you specified did not match what we received."}
	ErrInvalidDigest = &Error{Code: "InvalidDigest", Status: http.StatusBadRequest,
		Message: "The Content-MD5 you specified is not valid."}
	ErrInvalidChecksum = &Error{Code: "InvalidRequest", Status: http.StatusBadRequest,
		Message: "Value for x-amz-checksum header is invalid."}
)

func clone(e *Error) *Error {
	c := *e
	return &c
}

// malformedHeader is AuthorizationHeaderMalformed with the given reason.
func malformedHeader(reason string) *Error {
	return &Error{Code: "AuthorizationHeaderMalformed", Status: http.StatusBadRequest,
		Message: "The authorization header is malformed; " + reason}
}

// malformedQuery is AuthorizationQueryParametersError with the given message.
func malformedQuery(msg string) *Error {
	return &Error{Code: "AuthorizationQueryParametersError", Status: http.StatusBadRequest, Message: msg}
}

func errSkewed(reqTime, now time.Time, maxSkew time.Duration) *Error {
	e := clone(ErrRequestTimeTooSkewed)
	e.Details = []Detail{
		{"RequestTime", reqTime.UTC().Format(TimeFormat)},
		{"ServerTime", now.UTC().Format(time.RFC3339)},
		{"MaxAllowedSkewMilliseconds", strconv.FormatInt(maxSkew.Milliseconds(), 10)},
	}
	return e
}

func errBadDigest(alg string) *Error {
	e := clone(ErrBadDigest)
	e.Message = "The " + strings.ToUpper(strings.TrimPrefix(alg, "x-amz-checksum-")) +
		" you specified did not match the calculated checksum."
	return e
}

// ioError wraps a read error from the body into IncompleteBody, keeping it
// as the cause.
func ioError(err error) *Error {
	e := clone(ErrIncompleteBody)
	e.err = err
	return e
}
