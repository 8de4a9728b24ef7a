// Package kmsapi serves the embedded keyring (kms/keyring) as a KMS in its
// own right, over the AWS KMS JSON API: every AWS SDK, the aws CLI and
// s3seal's own AWS KMS backend (kms/awskms) use it unchanged, so several
// s3seal proxies can share one keyring.
//
// Requests are POST / with X-Amz-Target: TrentService.<Operation>,
// Content-Type application/x-amz-json-1.1, signed with Signature V4 for
// service "kms" by an s3seal identity (Identities). Errors are AWS KMS's
// exceptions: a JSON body {"__type": ..., "message": ...} with AWS's HTTP
// status. It is the one package under kms/ that speaks HTTP and knows
// sigv4; package kms itself still knows neither.
//
// # Who may do what
//
// There is one account, 000000000000. An identity is the principal
// arn:aws:iam::000000000000:user/<access key>; the administrator
// identities (Identities.Admin) are also the account's root,
// arn:aws:iam::000000000000:root. There are no IAM policies, so:
//
//   - operations on a key are decided by its key policy (kms/policy) and
//     its grants, as AWS KMS decides them: an explicit Deny in the policy
//     wins, then an Allow of the policy or of a grant, else the request is
//     denied (AccessDeniedException). The default key policy is AWS's: the
//     account root, here the administrators, may do everything. A policy
//     can give an identity the management of a key without its use, or the
//     other way round.
//   - operations on no key (CreateKey, ListKeys, ListAliases,
//     ListRetirableGrants), which AWS authorizes with IAM policies, are
//     for administrators only; GenerateRandom is for every identity.
//   - the alias half of CreateAlias/UpdateAlias/DeleteAlias (an IAM
//     permission in AWS) is not checked separately: the key policy of the
//     key(s) involved decides.
//
// Grants take effect at once and retiring or revoking one stops it at
// once (the keyring is read on every call), so grant tokens are checked
// for form only.
//
// # Audit
//
// Every call, allowed or denied, authenticated or not, is one
// CloudTrail-shaped line on the kms.AuditLog (the proxy's audit format),
// with the caller, the request's parameters (never plaintext, ciphertext
// or grant tokens) and the error code.
package kmsapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/kms/policy"
	"github.com/s3seal/s3seal/sigv4"
)

// Account is the one AWS account id the KMS API shows.
const Account = keyring.Account

// maxBody bounds a request body. The largest legitimate request is a
// PutKeyPolicy with a 32 KiB policy (JSON-escaped) or a 6 KiB ciphertext.
const maxBody = 256 << 10

// Identities resolves the access keys clients sign with. The server asks
// on every request, so answers may change at any time (a reloaded
// credentials file).
type Identities interface {
	// Lookup returns the secret key of accessKey; ok false if unknown.
	Lookup(accessKey string) (secret string, ok bool)
	// Admin reports whether accessKey administers the account: it is
	// then also the principal arn:aws:iam::000000000000:root.
	Admin(accessKey string) bool
}

// StaticIdentities is a fixed set of identities.
type StaticIdentities struct {
	Secrets map[string]string // access key -> secret key
	Admins  map[string]bool   // access keys of administrators
}

// Lookup implements Identities.
func (s *StaticIdentities) Lookup(ak string) (string, bool) {
	v, ok := s.Secrets[ak]
	return v, ok
}

// Admin implements Identities.
func (s *StaticIdentities) Admin(ak string) bool { return s.Admins[ak] }

// UserARN is the principal ARN of the identity with access key ak, as key
// policies and grants name it.
func UserARN(ak string) string { return "arn:aws:iam::" + Account + ":user/" + ak }

// RootARN is the account root's ARN: the administrators.
var RootARN = policy.RootARN(Account)

// Config configures a Server.
type Config struct {
	// Keyring is the keyring served. Required.
	Keyring *keyring.Keyring
	// Identities authenticate and name callers. Required.
	Identities Identities
	// Region, if set, is the only region clients may sign for; empty
	// accepts any (keys' ARNs say region "local" whatever the client
	// signed for).
	Region string
	// Audit receives one event per call; nil: none.
	Audit *kms.AuditLog
	// Logger logs internal failures; nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock of signatures and audit records (the keyring has
	// its own, for key dates and rotation); time.Now if nil.
	Now func() time.Time
}

// Server is an http.Handler serving the AWS KMS API.
type Server struct {
	cfg      Config
	kr       *keyring.Keyring
	verifier *sigv4.Verifier
	log      *slog.Logger
	now      func() time.Time
	policies *lru.Cache[string, *policy.Document]
}

var _ http.Handler = (*Server)(nil)

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Keyring == nil || cfg.Identities == nil {
		return nil, errors.New("kmsapi: Config.Keyring and Config.Identities are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cache, err := lru.New[string, *policy.Document](1024)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, kr: cfg.Keyring, log: cfg.Logger, now: cfg.Now, policies: cache}
	s.verifier = &sigv4.Verifier{Lookup: cfg.Identities.Lookup, Region: cfg.Region, Service: "kms", Now: cfg.Now}
	return s, nil
}

// caller is an authenticated identity.
type caller struct {
	accessKey  string
	arn        string
	admin      bool
	principals []string // arn, and RootARN for an administrator
}

// call is one request in flight: who makes it, and what the audit event
// will say about it.
type call struct {
	ctx      context.Context
	who      *caller
	sourceIP string
	secure   bool
	now      time.Time
	ev       kms.AuditEvent
}

// resource records a key the call touches, for the audit event.
func (c *call) resource(arn string) {
	for _, r := range c.ev.Resources {
		if r.ARN == arn {
			return
		}
	}
	c.ev.Resources = append(c.ev.Resources, kms.AuditResource{Type: "AWS::KMS::Key", ARN: arn})
}

// operation is one entry of the dispatch table.
type operation struct {
	readOnly bool
	// handle decodes its input from body and returns the output to
	// encode.
	handle func(s *Server, c *call, body []byte) (any, error)
}

// handler adapts a typed handler to the dispatch table.
func handler[In any](fn func(s *Server, c *call, in *In) (any, error)) func(*Server, *call, []byte) (any, error) {
	return func(s *Server, c *call, body []byte) (any, error) {
		in := new(In)
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, in); err != nil {
				return nil, apiErr(codeSerialization, "%s", serializationMessage(err))
			}
		}
		return fn(s, c, in)
	}
}

func serializationMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("Unexpected value for member %s: want %s", te.Field, te.Type)
	}
	return "The request body is not valid JSON: " + err.Error()
}

// operations is every operation served; the others get
// UnsupportedOperationException.
var operations = map[string]operation{
	"CreateKey":                       {false, handler(opCreateKey)},
	"DescribeKey":                     {true, handler(opDescribeKey)},
	"ListKeys":                        {true, handler(opListKeys)},
	"ListAliases":                     {true, handler(opListAliases)},
	"CreateAlias":                     {false, handler(opCreateAlias)},
	"UpdateAlias":                     {false, handler(opUpdateAlias)},
	"DeleteAlias":                     {false, handler(opDeleteAlias)},
	"UpdateKeyDescription":            {false, handler(opUpdateKeyDescription)},
	"EnableKey":                       {false, handler(opEnableKey)},
	"DisableKey":                      {false, handler(opDisableKey)},
	"ScheduleKeyDeletion":             {false, handler(opScheduleKeyDeletion)},
	"CancelKeyDeletion":               {false, handler(opCancelKeyDeletion)},
	"EnableKeyRotation":               {false, handler(opEnableKeyRotation)},
	"DisableKeyRotation":              {false, handler(opDisableKeyRotation)},
	"RotateKeyOnDemand":               {false, handler(opRotateKeyOnDemand)},
	"GetKeyRotationStatus":            {true, handler(opGetKeyRotationStatus)},
	"ListKeyRotations":                {true, handler(opListKeyRotations)},
	"GetKeyPolicy":                    {true, handler(opGetKeyPolicy)},
	"PutKeyPolicy":                    {false, handler(opPutKeyPolicy)},
	"ListKeyPolicies":                 {true, handler(opListKeyPolicies)},
	"TagResource":                     {false, handler(opTagResource)},
	"UntagResource":                   {false, handler(opUntagResource)},
	"ListResourceTags":                {true, handler(opListResourceTags)},
	"Encrypt":                         {false, handler(opEncrypt)},
	"Decrypt":                         {false, handler(opDecrypt)},
	"GetPublicKey":                    {true, handler(opGetPublicKey)},
	"ReEncrypt":                       {false, handler(opReEncrypt)},
	"GenerateDataKey":                 {false, handler(opGenerateDataKey)},
	"GenerateDataKeyWithoutPlaintext": {false, handler(opGenerateDataKeyWithoutPlaintext)},
	"GenerateRandom":                  {false, handler(opGenerateRandom)},
	"CreateGrant":                     {false, handler(opCreateGrant)},
	"ListGrants":                      {true, handler(opListGrants)},
	"ListRetirableGrants":             {true, handler(opListRetirableGrants)},
	"RetireGrant":                     {false, handler(opRetireGrant)},
	"RevokeGrant":                     {false, handler(opRevokeGrant)},
}

const (
	targetPrefix = "TrentService."
	contentType  = "application/x-amz-json-1.1"
)

// ServeHTTP serves one API request: authenticate, decode, authorize and
// run the operation, render the result or the error, audit.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/healthz" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
		return
	}
	start := s.now()
	reqID := newRequestID()
	c := &call{ctx: r.Context(), now: start, secure: r.TLS != nil}
	c.sourceIP, _, _ = net.SplitHostPort(r.RemoteAddr)
	name := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	c.ev = kms.AuditEvent{
		EventTime:          start.UTC().Format(time.RFC3339),
		EventName:          name,
		RequestID:          reqID,
		SourceIPAddress:    c.sourceIP,
		UserAgent:          r.UserAgent(),
		RecipientAccountID: Account,
		UserIdentity:       kms.AuditIdentity{Type: "Unknown"},
	}
	out, err := s.serve(c, r, name)
	w.Header().Set("x-amzn-RequestId", reqID)
	w.Header().Set("Content-Type", contentType)
	if err != nil {
		ae := toAPIError(err)
		if ae.Status >= 500 {
			s.log.Error("kms api: internal error", "operation", name, "err", err)
		}
		c.ev.ErrorCode, c.ev.ErrorMessage = ae.Code, ae.Message
		body, _ := json.Marshal(struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}{ae.Code, ae.Message})
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(ae.Status)
		w.Write(body)
	} else {
		body, merr := json.Marshal(out)
		if merr != nil {
			s.log.Error("kms api: encoding a response", "operation", name, "err", merr)
			body = []byte(`{"__type":"KMSInternalException","message":"The request failed because of an internal error."}`)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusInternalServerError)
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.Write(body)
		clearSecrets(out)
	}
	if s.cfg.Audit != nil {
		c.ev.DurationMillis = float64(s.now().Sub(start).Microseconds()) / 1000
		s.cfg.Audit.Write(&c.ev)
	}
}

// clearSecrets zeroes the plaintext an output carried once it is sent.
func clearSecrets(out any) {
	switch o := out.(type) {
	case *decryptOutput:
		kms.Zero(o.Plaintext)
	case *generateDataKeyOutput:
		kms.Zero(o.Plaintext)
	case *generateRandomOutput:
		kms.Zero(o.Plaintext)
	}
}

func (s *Server) serve(c *call, r *http.Request, name string) (any, error) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return nil, apiErr(codeUnknownOperation, "KMS API requests are POST /.")
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apiErr(codeRequestTooLarge, "The request body is larger than %d bytes.", maxBody)
		}
		return nil, apiErr(codeSerialization, "Reading the request body failed.")
	}
	// The verifier needs the headers as sent: net/http keeps
	// Content-Length out of the map.
	h := r.Header.Clone()
	if r.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	auth, err := s.verifier.VerifyPayload(&sigv4.Request{
		Method: r.Method, RawPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Host: r.Host, Header: h,
	}, body)
	if err != nil {
		return nil, authError(err)
	}
	c.who = s.caller(auth.AccessKey)
	c.ev.UserIdentity = kms.AuditIdentity{
		Type: "IAMUser", PrincipalID: c.who.accessKey, ARN: c.who.arn, AccountID: Account,
		AccessKeyID: c.who.accessKey, UserName: c.who.accessKey,
	}
	target := r.Header.Get("X-Amz-Target")
	if !strings.HasPrefix(target, targetPrefix) {
		return nil, apiErr(codeUnknownOperation, "Unknown X-Amz-Target %q: want TrentService.<Operation>.", target)
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); ct != contentType && ct != "application/x-amz-json-1.0" {
		return nil, apiErr(codeSerialization, "Content-Type must be %s.", contentType)
	}
	op, ok := operations[name]
	if !ok {
		return nil, apiErr(codeUnsupported, "s3seal's KMS does not support %s.", name)
	}
	c.ev.ReadOnly = op.readOnly
	return op.handle(s, c, body)
}

func (s *Server) caller(ak string) *caller {
	who := &caller{accessKey: ak, arn: UserARN(ak)}
	who.principals = []string{who.arn}
	if s.cfg.Identities.Admin(ak) {
		who.admin = true
		who.principals = append(who.principals, RootARN)
	}
	return who
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// RunRotation rotates the keyring's keys whose automatic rotation is due,
// now and every interval until ctx ends, logging what it rotated. Run one
// per process that owns a keyring (several are harmless: a key is rotated
// once per due date).
func RunRotation(ctx context.Context, kr *keyring.Keyring, interval time.Duration, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ids, err := kr.RotateDue()
		if err != nil {
			log.Error("automatic key rotation failed", "err", err)
		}
		for _, id := range ids {
			log.Info("rotated key material (automatic rotation)", "key", id)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
