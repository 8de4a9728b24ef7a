package kmsapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/policy"
	"github.com/s3seal/s3seal/sigv4"
)

// Error is an AWS KMS API error: the exception name clients see in the
// body's __type (and SDKs turn into a typed error), its HTTP status and
// message. Handlers return it; ServeHTTP renders it in one place.
type Error struct {
	Code    string
	Status  int
	Message string
	Cause   error // logged, never sent
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Exception names beyond those of package kms.
const (
	codeMalformedPolicy     = "MalformedPolicyDocumentException"
	codeInvalidAliasName    = "InvalidAliasNameException"
	codeInvalidArn          = "InvalidArnException"
	codeInvalidGrantID      = "InvalidGrantIdException"
	codeInvalidGrantToken   = "InvalidGrantTokenException"
	codeInvalidMarker       = "InvalidMarkerException"
	codeTag                 = "TagException"
	codeUnsupported         = "UnsupportedOperationException"
	codeDryRun              = "DryRunOperationException"
	codeSerialization       = "SerializationException"
	codeUnknownOperation    = "UnknownOperationException"
	codeMissingAuth         = "MissingAuthenticationTokenException"
	codeUnrecognizedClient  = "UnrecognizedClientException"
	codeInvalidSignature    = "InvalidSignatureException"
	codeIncompleteSignature = "IncompleteSignatureException"
	codeRequestTooLarge     = "RequestEntityTooLargeException"
	codeCustomKeyStore404   = "CustomKeyStoreNotFoundException"
)

// statusOf is the HTTP status AWS KMS answers an exception with: 400 for
// everything the client did, 5xx for the service's own failures.
func statusOf(code string) int {
	switch code {
	case kms.CodeInternal, kms.CodeKeyUnavailable:
		return http.StatusInternalServerError
	case kms.CodeUnavailable:
		return http.StatusServiceUnavailable
	case codeDryRun:
		return http.StatusPreconditionFailed
	case codeRequestTooLarge:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func apiErr(code, format string, args ...any) *Error {
	return &Error{Code: code, Status: statusOf(code), Message: fmt.Sprintf(format, args...)}
}

func validation(format string, args ...any) *Error {
	return apiErr(kms.CodeValidation, format, args...)
}

// toAPIError turns any error a handler returns into the Error to send.
func toAPIError(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var ke *kms.Error
	if errors.As(err, &ke) {
		return &Error{Code: ke.Code, Status: statusOf(ke.Code), Message: ke.Message, Cause: ke.Err}
	}
	var pe *policy.Error
	if errors.As(err, &pe) {
		return &Error{Code: codeMalformedPolicy, Status: http.StatusBadRequest, Message: pe.Reason}
	}
	return &Error{Code: kms.CodeInternal, Status: http.StatusInternalServerError, Message: "The request failed because of an internal error.", Cause: err}
}

// authError maps a signature verification failure to the exceptions AWS's
// JSON services answer with.
func authError(err error) *Error {
	var se *sigv4.Error
	if !errors.As(err, &se) {
		return toAPIError(err)
	}
	switch {
	case errors.Is(err, sigv4.ErrMissingAuth):
		return apiErr(codeMissingAuth, "Missing Authentication Token")
	case errors.Is(err, sigv4.ErrInvalidAccessKeyID):
		return apiErr(codeUnrecognizedClient, "The security token included in the request is invalid.")
	case errors.Is(err, sigv4.ErrSignatureDoesNotMatch):
		return apiErr(codeInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	case errors.Is(err, sigv4.ErrRequestTimeTooSkewed):
		return apiErr(codeInvalidSignature, "Signature expired: the request time is more than %v from the server's time.", sigv4.DefaultMaxSkew)
	case errors.Is(err, sigv4.ErrContentSHA256Mismatch):
		return apiErr(codeInvalidSignature, "%s", se.Message)
	}
	return apiErr(codeIncompleteSignature, "%s", se.Message)
}
