package s3wire

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/sigv4"
)

// Error is an S3 error as the client sees it. Every failure the proxy
// reports goes through this type and is rendered in one place (Render), so
// that the XML, status and codes always look like S3's.
type Error struct {
	Status  int
	Code    string
	Message string
	// Extra elements S3 adds for some codes (StringToSign for
	// SignatureDoesNotMatch, ActualObjectSize for InvalidRange, ...).
	Extra []Field
	// Cause is logged, never shown to the client.
	Cause error
}

// Field is one extra element of an error document.
type Field struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// With adds an element to the error document.
func (e *Error) With(name, value string) *Error {
	e.Extra = append(e.Extra, Field{XMLName: xml.Name{Local: name}, Value: value})
	return e
}

// NewError is an S3 error with the given status, code and message.
func NewError(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// The errors the proxy raises itself, with AWS's wording. The variables are
// shared: copy one before setting its Cause or Extra.
var (
	ErrMissingContentLength = NewError(http.StatusLengthRequired, "MissingContentLength",
		"You must provide the Content-Length HTTP header.")
	ErrEntityTooLarge = NewError(http.StatusBadRequest, "EntityTooLarge",
		"Your proposed upload exceeds the maximum allowed object size.")
	ErrIncompleteBody = NewError(http.StatusBadRequest, "IncompleteBody",
		"You did not provide the number of bytes specified by the Content-Length HTTP header.")
	ErrNotSealed = NewError(http.StatusForbidden, "AccessDenied",
		"The object was not written through s3seal and cannot be read through it.")
	ErrSlowDown = NewError(http.StatusServiceUnavailable, "SlowDown",
		"Please reduce your request rate.")
	ErrMetadataTooLarge = NewError(http.StatusBadRequest, "MetadataTooLarge",
		"Your metadata headers exceed the maximum allowed metadata size.")
	ErrAccessDenied       = NewError(http.StatusForbidden, "AccessDenied", "Access Denied")
	ErrPreconditionFailed = NewError(http.StatusPreconditionFailed, "PreconditionFailed",
		"At least one of the pre-conditions you specified did not hold")
	ErrInvalidPartNumber = NewError(http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber",
		"The requested partnumber is not satisfiable")
	ErrMalformedXML = NewError(http.StatusBadRequest, "MalformedXML",
		"The XML you provided was not well-formed or did not validate against our published schema")
	ErrNoSuchKey = NewError(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
)

// NotImplemented refuses what the proxy cannot do safely.
func NotImplemented(what string) *Error {
	return NewError(http.StatusNotImplemented, "NotImplemented",
		"A header or operation you provided implies functionality that is not implemented: "+what)
}

// Internal is a failure of the proxy or the store; cause is logged only.
func Internal(cause error) *Error {
	e := NewError(http.StatusInternalServerError, "InternalError",
		"We encountered an internal error. Please try again.")
	e.Cause = cause
	return e
}

// Damaged reports a stored object that failed authentication, or one that
// is not finalized (envelope.ErrIncomplete): a multipart upload the store
// completed but s3seal's CompleteMultipartUpload never finished (the store
// or the proxy failed in between, and the client gave up or aborted). That
// object is not readable: finalizing it on read would let the store pick
// the parts (FORMAT.md 11.5). It is answered 403 InvalidObjectState, which
// SDKs do not retry in vain, saying what the client can do: a Complete
// retried with the same parts still finalizes it (finalize.go).
func Damaged(cause error) *Error {
	if errors.Is(cause, envelope.ErrIncomplete) {
		e := NewError(http.StatusForbidden, "InvalidObjectState",
			"The object is a multipart upload whose CompleteMultipartUpload did not finish: retry CompleteMultipartUpload with the same upload id and parts, or delete the object.")
		e.Cause = cause
		return e
	}
	e := NewError(http.StatusInternalServerError, "InternalError",
		"The stored object failed authentication; it has been altered or damaged.")
	e.Cause = cause
	return e
}

// InvalidRange is S3's answer to a range outside an object of size bytes.
func InvalidRange(size int64, requested string) *Error {
	return NewError(http.StatusRequestedRangeNotSatisfiable, "InvalidRange",
		"The requested range is not satisfiable").
		With("RangeRequested", requested).
		With("ActualObjectSize", fmt.Sprint(size))
}

func InvalidArgument(msg string) *Error {
	return NewError(http.StatusBadRequest, "InvalidArgument", msg)
}

func InvalidRequest(msg string) *Error {
	return NewError(http.StatusBadRequest, "InvalidRequest", msg)
}

// StatusError names the S3 error for a bodiless store status (HEAD
// responses carry no XML).
func StatusError(status int) *Error {
	code := "InternalError"
	switch status {
	case http.StatusNotFound:
		code = "NoSuchKey"
	case http.StatusForbidden:
		code = "AccessDenied"
	case http.StatusPreconditionFailed:
		code = "PreconditionFailed"
	case http.StatusNotModified:
		code = "NotModified"
	}
	return NewError(status, code, http.StatusText(status))
}

// AsError turns any error into the Error the client sees: errors that are
// already S3-shaped pass through, the rest become InternalError.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}

type errorDoc struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Extra     []Field
	Resource  string `xml:",omitempty"`
	RequestID string `xml:"RequestId"`
	HostID    string `xml:"HostId"`
}

// Render returns the XML body S3 sends with an error.
func (e *Error) Render(resource, requestID string) []byte {
	body, err := xml.Marshal(errorDoc{
		Code: e.Code, Message: e.Message, Extra: e.Extra,
		Resource: resource, RequestID: requestID, HostID: requestID,
	})
	if err != nil { // only possible for invalid UTF-8 in Extra
		body = []byte("<Error><Code>InternalError</Code></Error>")
	}
	return append([]byte(xml.Header), body...)
}

// FromAuthError converts a sigv4 failure into the S3 error the client sees.
func FromAuthError(err error) error {
	var ae *sigv4.Error
	if errors.As(err, &ae) {
		e := &Error{Status: ae.Status, Code: ae.Code, Message: ae.Message, Cause: err}
		// The elements S3 adds to authentication errors, in its order;
		// never a secret.
		if ae.AccessKeyID != "" {
			e.With("AWSAccessKeyId", ae.AccessKeyID)
		}
		if ae.Code == "SignatureDoesNotMatch" {
			if ae.StringToSign != "" {
				e.With("StringToSign", ae.StringToSign)
				e.With("StringToSignBytes", hexBytes(ae.StringToSign))
			}
			if ae.SignatureProvided != "" {
				e.With("SignatureProvided", ae.SignatureProvided)
			}
			if ae.CanonicalRequest != "" {
				e.With("CanonicalRequest", ae.CanonicalRequest)
			}
		}
		for _, d := range ae.Details {
			e.With(d.Name, d.Value)
		}
		return e
	}
	return err
}

// hexBytes renders s as S3's StringToSignBytes: space-separated hex.
func hexBytes(s string) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, len(s)*3)
	for i := 0; i < len(s); i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, digits[s[i]>>4], digits[s[i]&15])
	}
	return string(b)
}

// FromKMSError maps a KMS failure to the S3 error AWS S3 returns for an
// SSE-KMS object (checked against what S3 answers; S3 prefixes the KMS
// exception name with "KMS."):
//
//   - DisabledException, KMSInvalidStateException (pending deletion),
//     NotFoundException (also a key in another region: "Invalid arn"),
//     InvalidKeyUsageException, ...: 400 with code KMS.<name>;
//   - AccessDeniedException: 403 AccessDenied (S3 reports a missing
//     kms:Decrypt or kms:GenerateDataKey permission as plain AccessDenied);
//   - InvalidCiphertextException, IncorrectKeyException (wrong encryption
//     context, a blob from another key or region): 403 AccessDenied with
//     the message S3 gives when it cannot unwrap an object's key;
//   - throttling and KMS 5xx/timeouts that outlasted the retry deadline:
//     503 SlowDown, which SDKs retry with backoff.
//
// Nothing has been written when any of these is returned: every caller
// asks the KMS before the first byte goes to the store.
func FromKMSError(err error) error {
	code := kms.ErrorCode(err)
	switch code {
	case kms.CodeThrottling, kms.CodeUnavailable, kms.CodeInternal, kms.CodeKeyUnavailable:
		e := *ErrSlowDown
		e.Cause = err
		return &e
	case kms.CodeAccessDenied:
		return &Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: "Access Denied", Cause: err}
	case kms.CodeInvalidCiphertext, kms.CodeIncorrectKey:
		return &Error{Status: http.StatusForbidden, Code: "AccessDenied",
			Message: "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.",
			Cause:   err}
	case kms.CodeDisabled, kms.CodeInvalidState, kms.CodeNotFound, kms.CodeInvalidKeyUsage, kms.CodeValidation, kms.CodeLimitExceeded:
		return &Error{Status: http.StatusBadRequest, Code: "KMS." + code, Message: kmsMessages[code], Cause: err}
	}
	return Internal(err)
}

// kmsMessages are what a client is told of a KMS failure. The KMS's own
// message stays in the log (the error's Cause): it may name accounts,
// roles, key ARNs and endpoints of the deployment.
var kmsMessages = map[string]string{
	kms.CodeDisabled:        "The KMS key that protects this request is disabled.",
	kms.CodeInvalidState:    "The KMS key that protects this request is not usable in its current state.",
	kms.CodeNotFound:        "The KMS key that protects this request does not exist or is not in this region.",
	kms.CodeInvalidKeyUsage: "The KMS key that protects this request cannot be used for this operation.",
	kms.CodeValidation:      "The KMS request was not valid.",
	kms.CodeLimitExceeded:   "A KMS limit was exceeded.",
}
