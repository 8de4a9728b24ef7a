package kms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Caller identifies who a KMS call is made for: the S3 principal (access key
// or user name) and the object the key is for. The proxy attaches it to the
// request context with WithCaller; Audit records it.
type Caller struct {
	Identity string
	Bucket   string
	Object   string
}

type callerKey struct{}

// WithCaller returns ctx carrying the caller's identity and the bucket and
// object the KMS call serves.
func WithCaller(ctx context.Context, identity, bucket, object string) context.Context {
	return context.WithValue(ctx, callerKey{}, Caller{Identity: identity, Bucket: bucket, Object: object})
}

// CallerFrom returns the Caller attached by WithCaller.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// AuditEvent is one audit record, shaped like a CloudTrail KMS event so
// that the tools that read CloudTrail (jq filters, Athena tables, SIEM
// parsers) read it too. It never holds key material, plaintext or wrapped
// keys: only key ids, encryption contexts and outcomes.
//
// Two writers make them: the Audit wrapper (the calls this process makes
// to its KMS, userIdentity type "s3seal", invokedBy "s3seal") and the KMS
// API server (kmsapi: the calls clients make to it, type "IAMUser",
// with the caller's ARN, access key and address).
type AuditEvent struct {
	EventVersion        string            `json:"eventVersion"`
	EventTime           string            `json:"eventTime"`
	EventSource         string            `json:"eventSource"`
	EventName           string            `json:"eventName"`
	EventType           string            `json:"eventType"`
	EventID             string            `json:"eventID"`
	RequestID           string            `json:"requestID,omitempty"`
	ReadOnly            bool              `json:"readOnly"`
	UserIdentity        AuditIdentity     `json:"userIdentity"`
	SourceIPAddress     string            `json:"sourceIPAddress,omitempty"`
	UserAgent           string            `json:"userAgent,omitempty"`
	RequestParameters   AuditParameters   `json:"requestParameters"`
	ResponseElements    *AuditResponse    `json:"responseElements,omitempty"`
	ErrorCode           string            `json:"errorCode,omitempty"`
	ErrorMessage        string            `json:"errorMessage,omitempty"`
	Resources           []AuditResource   `json:"resources,omitempty"`
	RecipientAccountID  string            `json:"recipientAccountId,omitempty"`
	AdditionalEventData map[string]string `json:"additionalEventData,omitempty"`
	DurationMillis      float64           `json:"s3sealDurationMillis"`
}

// AuditIdentity is CloudTrail's userIdentity, reduced.
type AuditIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
	UserName    string `json:"userName,omitempty"`
	InvokedBy   string `json:"invokedBy,omitempty"`
}

// AuditParameters is CloudTrail's requestParameters for KMS calls. Only
// what identifies and qualifies a call: never Plaintext, CiphertextBlob
// or grant tokens.
type AuditParameters struct {
	KeyID                          string            `json:"keyId,omitempty"`
	KeySpec                        string            `json:"keySpec,omitempty"`
	NumberOfBytes                  int               `json:"numberOfBytes,omitempty"`
	EncryptionContext              map[string]string `json:"encryptionContext,omitempty"`
	EncryptionAlgorithm            string            `json:"encryptionAlgorithm,omitempty"`
	SourceKeyID                    string            `json:"sourceKeyId,omitempty"`
	SourceEncryptionContext        map[string]string `json:"sourceEncryptionContext,omitempty"`
	DestinationKeyID               string            `json:"destinationKeyId,omitempty"`
	DestinationEncryptionContext   map[string]string `json:"destinationEncryptionContext,omitempty"`
	Description                    string            `json:"description,omitempty"`
	KeyUsage                       string            `json:"keyUsage,omitempty"`
	Origin                         string            `json:"origin,omitempty"`
	AliasName                      string            `json:"aliasName,omitempty"`
	TargetKeyID                    string            `json:"targetKeyId,omitempty"`
	PendingWindowInDays            int               `json:"pendingWindowInDays,omitempty"`
	RotationPeriodInDays           int               `json:"rotationPeriodInDays,omitempty"`
	PolicyName                     string            `json:"policyName,omitempty"`
	Policy                         string            `json:"policy,omitempty"`
	BypassPolicyLockoutSafetyCheck bool              `json:"bypassPolicyLockoutSafetyCheck,omitempty"`
	GrantID                        string            `json:"grantId,omitempty"`
	GrantName                      string            `json:"name,omitempty"`
	GranteePrincipal               string            `json:"granteePrincipal,omitempty"`
	RetiringPrincipal              string            `json:"retiringPrincipal,omitempty"`
	Operations                     []string          `json:"operations,omitempty"`
	Constraints                    any               `json:"constraints,omitempty"`
	TagKeys                        []string          `json:"tagKeys,omitempty"`
	Limit                          int               `json:"limit,omitempty"`
	Marker                         string            `json:"marker,omitempty"`
	DryRun                         bool              `json:"dryRun,omitempty"`
}

// AuditResponse is CloudTrail's responseElements, for the calls whose
// outcome names something new (a key, a grant, a deletion date).
type AuditResponse struct {
	KeyID        string `json:"keyId,omitempty"`
	GrantID      string `json:"grantId,omitempty"`
	DeletionDate string `json:"deletionDate,omitempty"`
}

// AuditResource is one entry of CloudTrail's resources.
type AuditResource struct {
	Type string `json:"type"`
	ARN  string `json:"ARN"`
}

// AuditStats are the audit wrapper's counters.
type AuditStats struct {
	Events      uint64
	WriteErrors uint64 // events that could not be written
}

// AuditLog writes audit events, one JSON line each, to a writer. It is
// safe for concurrent use; give the Audit wrapper and the KMS API server
// one AuditLog when they share a file, so that their lines never
// interleave. A failed write is counted in Stats().WriteErrors, never
// returned: the call it records has happened.
type AuditLog struct {
	mu sync.Mutex
	w  io.Writer

	events, writeErrs atomic.Uint64
}

// NewAuditLog returns an AuditLog writing to w.
func NewAuditLog(w io.Writer) *AuditLog { return &AuditLog{w: w} }

// Stats returns the counters.
func (l *AuditLog) Stats() AuditStats {
	return AuditStats{Events: l.events.Load(), WriteErrors: l.writeErrs.Load()}
}

// Write writes ev as one line. It fills in what every event carries when
// ev leaves it empty: eventVersion, eventSource, eventType and a random
// eventID.
func (l *AuditLog) Write(ev *AuditEvent) {
	if ev.EventVersion == "" {
		ev.EventVersion = "1.08"
	}
	if ev.EventSource == "" {
		ev.EventSource = "kms.amazonaws.com"
	}
	if ev.EventType == "" {
		ev.EventType = "AwsApiCall"
	}
	if ev.EventID == "" {
		ev.EventID = newEventID()
	}
	line, err := json.Marshal(ev)
	l.events.Add(1)
	if err != nil {
		l.writeErrs.Add(1)
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	_, err = l.w.Write(line)
	l.mu.Unlock()
	if err != nil {
		l.writeErrs.Add(1)
	}
}

// Audit is a Client that writes one JSON line per call to an AuditLog. A
// failed write does not fail the call (the KMS operation has happened); it
// is counted in Stats().WriteErrors so that the operator can alert on it.
//
// Stack it directly above the backend so that it records the calls the KMS
// really sees (cache hits are not KMS calls; each retry attempt is one).
type Audit struct {
	inner  Client
	caller func(context.Context) string
	now    func() time.Time
	log    *AuditLog
}

var (
	_ Wrapper          = (*Audit)(nil)
	_ AsymmetricClient = (*Audit)(nil)
)

// NewAudit wraps inner, writing events to w. caller names the principal a
// call is made for; if nil, the Identity from WithCaller is used.
func NewAudit(inner Client, w io.Writer, caller func(ctx context.Context) string) *Audit {
	return NewAuditTo(inner, NewAuditLog(w), caller)
}

// NewAuditTo is NewAudit writing to a shared AuditLog.
func NewAuditTo(inner Client, log *AuditLog, caller func(ctx context.Context) string) *Audit {
	if caller == nil {
		caller = func(ctx context.Context) string {
			c, _ := CallerFrom(ctx)
			return c.Identity
		}
	}
	return &Audit{inner: inner, log: log, caller: caller, now: time.Now}
}

// Unwrap returns the wrapped Client.
func (a *Audit) Unwrap() Client { return a.inner }

// Stats returns the counters of its AuditLog.
func (a *Audit) Stats() AuditStats { return a.log.Stats() }

func (a *Audit) record(ctx context.Context, start time.Time, name string, readOnly bool, p AuditParameters, resolved []string, err error) {
	ev := AuditEvent{
		EventTime: start.UTC().Format(time.RFC3339),
		EventName: name,
		ReadOnly:  readOnly,
		UserIdentity: AuditIdentity{
			Type:        "s3seal",
			PrincipalID: a.caller(ctx),
			InvokedBy:   "s3seal",
		},
		RequestParameters: p,
		DurationMillis:    float64(a.now().Sub(start).Microseconds()) / 1000,
	}
	if c, ok := CallerFrom(ctx); ok && (c.Bucket != "" || c.Object != "") {
		ev.AdditionalEventData = map[string]string{"bucket": c.Bucket, "object": c.Object}
	}
	if err != nil {
		ev.ErrorCode = ErrorCode(err)
		if ev.ErrorCode == "" {
			ev.ErrorCode = "ClientError"
		}
		ev.ErrorMessage = err.Error()
	}
	for _, id := range resolved {
		if id != "" {
			ev.Resources = append(ev.Resources, AuditResource{Type: "AWS::KMS::Key", ARN: id})
		}
	}
	a.log.Write(&ev)
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// GenerateDataKey records and forwards the call.
func (a *Audit) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*DataKey, error) {
	start := a.now()
	dk, err := a.inner.GenerateDataKey(ctx, keyID, encCtx)
	res := keyID
	if dk != nil {
		res = dk.KeyID
	}
	a.record(ctx, start, "GenerateDataKey", false, AuditParameters{KeyID: keyID, KeySpec: "AES_256", EncryptionContext: encCtx}, []string{res}, err)
	return dk, err
}

// Decrypt records and forwards the call.
func (a *Audit) Decrypt(ctx context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	start := a.now()
	pt, err := a.inner.Decrypt(ctx, keyID, wrapped, encCtx)
	a.record(ctx, start, "Decrypt", false, AuditParameters{KeyID: keyID, EncryptionContext: encCtx}, []string{keyID}, err)
	return pt, err
}

// Encrypt records and forwards the call.
func (a *Audit) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	start := a.now()
	ct, err := a.inner.Encrypt(ctx, keyID, plaintext, encCtx)
	a.record(ctx, start, "Encrypt", false, AuditParameters{KeyID: keyID, EncryptionContext: encCtx}, []string{keyID}, err)
	return ct, err
}

// ReEncrypt records and forwards the call.
func (a *Audit) ReEncrypt(ctx context.Context, srcKeyID string, wrapped []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) ([]byte, string, error) {
	start := a.now()
	ct, dst, err := a.inner.ReEncrypt(ctx, srcKeyID, wrapped, srcCtx, dstKeyID, dstCtx)
	res := dst
	if res == "" {
		res = dstKeyID
	}
	a.record(ctx, start, "ReEncrypt", false, AuditParameters{
		KeyID: srcKeyID, EncryptionContext: srcCtx,
		DestinationKeyID: dstKeyID, DestinationEncryptionContext: dstCtx,
	}, []string{srcKeyID, res}, err)
	return ct, dst, err
}

// DescribeKey records and forwards the call.
func (a *Audit) DescribeKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	start := a.now()
	md, err := a.inner.DescribeKey(ctx, keyID)
	res := keyID
	if md != nil {
		res = md.KeyID
		if md.Arn != "" {
			res = md.Arn
		}
	}
	a.record(ctx, start, "DescribeKey", true, AuditParameters{KeyID: keyID}, []string{res}, err)
	return md, err
}

// GetPublicKey records and forwards the call.
func (a *Audit) GetPublicKey(ctx context.Context, keyID string) (*PublicKey, error) {
	as, err := asymOf(a.inner)
	if err != nil {
		return nil, err
	}
	start := a.now()
	pk, err := as.GetPublicKey(ctx, keyID)
	res := keyID
	if pk != nil {
		res = pk.KeyID
	}
	a.record(ctx, start, "GetPublicKey", true, AuditParameters{KeyID: keyID}, []string{res}, err)
	return pk, err
}

// DecryptAsymmetric records and forwards the call (CloudTrail names it
// Decrypt, with the algorithm).
func (a *Audit) DecryptAsymmetric(ctx context.Context, keyID, alg string, ct []byte) ([]byte, error) {
	as, err := asymOf(a.inner)
	if err != nil {
		return nil, err
	}
	start := a.now()
	pt, err := as.DecryptAsymmetric(ctx, keyID, alg, ct)
	a.record(ctx, start, "Decrypt", false, AuditParameters{KeyID: keyID, EncryptionAlgorithm: alg}, []string{keyID}, err)
	return pt, err
}
