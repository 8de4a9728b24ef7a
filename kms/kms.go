// Package kms defines what s3seal needs from a key management service and
// provides the backends (AWS KMS, the embedded keyring) and the wrappers
// stacked in front of them (data-key cache, retries, audit).
//
// The package knows nothing of HTTP servers, S3 or the object format: it
// hands out and unwraps data keys, nothing more.
//
// Backends: kms/awskms (AWS KMS and compatible endpoints) and kms/keyring
// (the embedded keyring). Both pass the shared suite in kms/kmstest.
// kms/rsafile is an RSA key pair in PEM files, for write-only buckets
// without a KMS (asymmetric operations only).
//
// kmsapi serves the embedded keyring over the AWS KMS API, so that
// other processes reach it through kms/awskms; kms/policy is the key
// policy language it enforces. Package kms itself stays free of HTTP.
//
// Wrappers, each a Client around a Client, are stacked by cmd:
//
//	client := kms.NewCache(            // reuse data keys, remember unwrapped ones
//		kms.NewRetry(                  // backoff on throttling / 5xx / timeouts
//			kms.NewAudit(backend, w, nil), // one line per call the KMS really sees
//			kms.RetryConfig{}),
//		kms.DefaultCacheConfig())
//
// Each wrapper has Stats() for metrics and Unwrap() to reach the layer
// below.
//
// RSA key pairs (write-only buckets, asym.go): backends that hold them
// implement AsymmetricClient, which every wrapper passes through, and cmd
// stacks a second cache over an Asymmetric over the same retry, audit and
// meter layers:
//
//	asym := kms.NewCache(kms.NewAsymmetric(retried, kms.AsymmetricConfig{Decrypt: canRead}), cfg)
package kms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Client is the subset of the AWS KMS API s3seal uses. Every method takes
// the encryption context the key is bound to; a backend must refuse to
// unwrap a key under a context other than the one it was wrapped with.
//
// Plaintext key bytes returned by any method belong to the caller, who
// zeroes them when done (see Zero). Implementations never keep a reference
// to a slice they have returned.
type Client interface {
	// GenerateDataKey returns a fresh AES-256 data key, in plaintext and
	// wrapped under keyID. keyID may be a key id, ARN or alias; the returned
	// DataKey.KeyID is the resolved, canonical id to store beside the
	// wrapped key.
	GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*DataKey, error)
	// Decrypt unwraps a data key produced by GenerateDataKey or Encrypt.
	Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error)
	// Encrypt wraps caller-supplied key material under keyID.
	Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) ([]byte, error)
	// ReEncrypt rewraps a data key from one key/context to another without
	// exposing it to the caller; it returns the new wrapped key and the
	// resolved destination key id.
	ReEncrypt(ctx context.Context, srcKeyID string, wrapped []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (newWrapped []byte, dstResolved string, err error)
	// DescribeKey reports a key's metadata; it is also how readiness checks
	// probe the KMS.
	DescribeKey(ctx context.Context, keyID string) (*KeyMetadata, error)
}

// DataKey is a data key in both forms.
type DataKey struct {
	KeyID      string // canonical id of the wrapping key
	Plaintext  []byte // 32 bytes; the caller zeroes it after use
	Ciphertext []byte // opaque wrapped form, stored with the object
}

// KeyState mirrors AWS KMS key states.
type KeyState string

const (
	KeyEnabled         KeyState = "Enabled"
	KeyDisabled        KeyState = "Disabled"
	KeyPendingDeletion KeyState = "PendingDeletion"
)

// KeyMetadata is the part of AWS KMS's KeyMetadata s3seal shows.
type KeyMetadata struct {
	KeyID        string    `json:"KeyId"`
	Arn          string    `json:"Arn,omitempty"`
	Aliases      []string  `json:"Aliases,omitempty"`
	Description  string    `json:"Description,omitempty"`
	CreationDate time.Time `json:"CreationDate"`
	KeyState     KeyState  `json:"KeyState"`
	DeletionDate time.Time `json:"DeletionDate,omitzero"`
	// KeyVersions counts key material versions (embedded keyring rotation).
	KeyVersions int `json:"KeyVersions,omitempty"`
	// KeySpec, KeyUsage and EncryptionAlgorithms as AWS reports them
	// (SYMMETRIC_DEFAULT or RSA_3072/RSA_4096, ENCRYPT_DECRYPT, ...);
	// empty when the backend did not say.
	KeySpec              string   `json:"KeySpec,omitempty"`
	KeyUsage             string   `json:"KeyUsage,omitempty"`
	EncryptionAlgorithms []string `json:"EncryptionAlgorithms,omitempty"`
	// Origin is where the key material lives, as AWS KMS says it:
	// AWS_CLOUDHSM for an embedded-keyring key held in an HSM (a custom
	// key store); "" means the KMS's own (AWS_KMS).
	Origin string `json:"Origin,omitempty"`
	// CustomKeyStoreID names the custom key store that holds the key
	// ("pkcs11:<token label>" for the embedded keyring's).
	CustomKeyStoreID string `json:"CustomKeyStoreId,omitempty"`
}

// Asymmetric reports whether the key is an RSA key pair.
func (m *KeyMetadata) Asymmetric() bool {
	return m.KeySpec == KeySpecRSA3072 || m.KeySpec == KeySpecRSA4096 || strings.HasPrefix(m.KeySpec, "RSA_")
}

// Error codes, named as AWS KMS names its exceptions so that the proxy can
// map each to the S3 error AWS returns for SSE-KMS objects.
const (
	CodeDisabled          = "DisabledException"
	CodeInvalidState      = "KMSInvalidStateException"
	CodeNotFound          = "NotFoundException"
	CodeAccessDenied      = "AccessDeniedException"
	CodeInvalidCiphertext = "InvalidCiphertextException"
	CodeThrottling        = "ThrottlingException"
	CodeInternal          = "KMSInternalException"
	CodeUnavailable       = "DependencyTimeoutException"
	CodeKeyUnavailable    = "KeyUnavailableException"
	CodeIncorrectKey      = "IncorrectKeyException"
	CodeInvalidKeyUsage   = "InvalidKeyUsageException"
	CodeAlreadyExists     = "AlreadyExistsException"
	CodeValidation        = "ValidationException"
	CodeLimitExceeded     = "LimitExceededException"
)

// Error is a KMS failure with its AWS exception name.
type Error struct {
	Code    string
	Message string
	Err     error // underlying cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("kms: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("kms: %s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the failure is transient (throttling, 5xx,
// timeouts) and may succeed if tried again.
func (e *Error) Retryable() bool {
	switch e.Code {
	case CodeThrottling, CodeInternal, CodeUnavailable, CodeKeyUnavailable:
		return true
	}
	return false
}

// ErrorCode returns the KMS exception name of err, or "" if err is not a
// *Error.
func ErrorCode(err error) string {
	var ke *Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return ""
}

// Retryable reports whether err is a *Error whose failure is transient.
func Retryable(err error) bool {
	var ke *Error
	return errors.As(err, &ke) && ke.Retryable()
}

// Wrapper is implemented by the wrappers in this package (Cache, Retry,
// Audit) so that code holding a stacked Client can find a layer.
type Wrapper interface {
	Client
	Unwrap() Client
}

// Zero overwrites key material in place.
func Zero(b []byte) {
	clear(b)
}

// BucketContext is the encryption context every s3seal data key is bound
// to.
func BucketContext(bucket string) map[string]string {
	return map[string]string{"s3seal:bucket": bucket}
}

// ARN is the parsed form of a KMS key or alias ARN,
// arn:PARTITION:kms:REGION:ACCOUNT:key/ID (or alias/NAME).
type ARN struct {
	Partition, Region, Account, Resource string
}

// ParseARN parses a KMS key or alias ARN; ok is false for anything else (a
// bare key id, an alias name).
func ParseARN(keyID string) (a ARN, ok bool) {
	f := strings.SplitN(keyID, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[2] != "kms" || f[1] == "" || f[3] == "" || f[5] == "" {
		return ARN{}, false
	}
	return ARN{Partition: f[1], Region: f[3], Account: f[4], Resource: f[5]}, true
}

// String is the ARN in its text form.
func (a ARN) String() string {
	return "arn:" + a.Partition + ":kms:" + a.Region + ":" + a.Account + ":" + a.Resource
}

// IsMultiRegion reports whether keyID (a key id or key ARN) names a
// multi-Region key: AWS gives those, and only those, ids that begin with
// "mrk-", the same id in every region it is replicated to.
func IsMultiRegion(keyID string) bool {
	return strings.HasPrefix(MultiRegionID(keyID), "mrk-")
}

// MultiRegionID is the key id of keyID (a key id or key ARN) when it names
// a multi-Region key, else "". Two keys with the same MultiRegionID are
// related multi-Region keys: a primary and its replicas, one key material.
func MultiRegionID(keyID string) string {
	id := keyID
	if a, ok := ParseARN(keyID); ok {
		r, found := strings.CutPrefix(a.Resource, "key/")
		if !found {
			return ""
		}
		id = r
	}
	if !strings.HasPrefix(id, "mrk-") {
		return ""
	}
	return id
}
