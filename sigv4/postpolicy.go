package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
)

// Browser-based (POST form) uploads carry their authentication in form
// fields: a base64 policy document and a signature over that base64 text
// (not over the request). The policy says until when, and what the form may
// hold: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html
// This file is pure: the form's fields come in as a map, lower-case names.

// PostPolicy is a parsed POST policy document.
type PostPolicy struct {
	Expiration time.Time
	Conditions []PostCondition
	// MinLength and MaxLength are its content-length-range, if HasRange.
	MinLength, MaxLength int64
	HasRange             bool
}

// PostCondition is one condition on a form field: Op is "eq" or
// "starts-with"; Field is lower case, without the "$".
type PostCondition struct {
	Op, Field, Value string
}

// Errors of POST policies, as S3 answers them.
var (
	ErrPostPolicyMalformed = &Error{Code: "MalformedPOSTRequest", Status: http.StatusBadRequest,
		Message: "The body of your POST request is not well-formed multipart/form-data."}
	ErrPostPolicyInvalid = &Error{Code: "InvalidPolicyDocument", Status: http.StatusBadRequest,
		Message: "Invalid Policy: Invalid JSON."}
	ErrPostPolicyExpired = &Error{Code: "AccessDenied", Status: http.StatusForbidden,
		Message: "Invalid according to Policy: Policy expired."}
	ErrPostEntityTooSmall = &Error{Code: "EntityTooSmall", Status: http.StatusBadRequest,
		Message: "Your proposed upload is smaller than the minimum allowed size"}
	ErrPostEntityTooLarge = &Error{Code: "EntityTooLarge", Status: http.StatusBadRequest,
		Message: "Your proposed upload exceeds the maximum allowed size"}
)

func policyDenied(msg string) *Error {
	return &Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Invalid according to Policy: " + msg}
}

func invalidPolicy(msg string) *Error {
	return &Error{Code: "InvalidPolicyDocument", Status: http.StatusBadRequest, Message: "Invalid Policy: " + msg}
}

// ParsePostPolicy decodes the base64 policy field and parses its JSON.
func ParsePostPolicy(b64 string) (*PostPolicy, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, invalidPolicy("Invalid Base64 encoding.")
	}
	var doc struct {
		Expiration *string            `json:"expiration"`
		Conditions *[]json.RawMessage `json:"conditions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, ErrPostPolicyInvalid
	}
	if doc.Expiration == nil {
		return nil, invalidPolicy("Policy missing expiration.")
	}
	if doc.Conditions == nil {
		return nil, invalidPolicy("Policy missing conditions.")
	}
	p := &PostPolicy{}
	if p.Expiration, err = time.Parse(time.RFC3339Nano, *doc.Expiration); err != nil {
		return nil, invalidPolicy("Invalid 'expiration' value: '" + *doc.Expiration + "'")
	}
	for _, c := range *doc.Conditions {
		if err := p.addCondition(c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *PostPolicy) addCondition(raw json.RawMessage) error {
	var obj map[string]any
	if json.Unmarshal(raw, &obj) == nil {
		// {"field": "value"}: an exact match.
		if len(obj) != 1 {
			return invalidPolicy("Invalid simple condition: one field per object.")
		}
		for k, v := range obj {
			s, ok := v.(string)
			if !ok {
				return invalidPolicy("Invalid simple condition value for " + k + ".")
			}
			p.Conditions = append(p.Conditions, PostCondition{Op: "eq", Field: strings.ToLower(strings.TrimPrefix(k, "$")), Value: s})
		}
		return nil
	}
	var arr []any
	if json.Unmarshal(raw, &arr) != nil || len(arr) != 3 {
		return invalidPolicy("Invalid condition: " + string(raw))
	}
	op, _ := arr[0].(string)
	switch strings.ToLower(op) {
	case "content-length-range":
		lo, ok1 := arr[1].(float64)
		hi, ok2 := arr[2].(float64)
		if !ok1 || !ok2 || lo < 0 || hi < lo || lo != math.Trunc(lo) || hi != math.Trunc(hi) || hi > math.MaxInt64/2 {
			return invalidPolicy("Invalid content-length-range condition.")
		}
		p.MinLength, p.MaxLength, p.HasRange = int64(lo), int64(hi), true
		return nil
	case "eq", "starts-with":
		field, ok1 := arr[1].(string)
		value, ok2 := arr[2].(string)
		if !ok1 || !ok2 || !strings.HasPrefix(field, "$") || len(field) < 2 {
			return invalidPolicy("Invalid condition: " + string(raw))
		}
		p.Conditions = append(p.Conditions, PostCondition{Op: strings.ToLower(op), Field: strings.ToLower(field[1:]), Value: value})
		return nil
	}
	return invalidPolicy("Invalid condition operator: " + fmt.Sprint(arr[0]))
}

// postFieldsExempt are the form fields no condition needs to name.
var postFieldsExempt = map[string]bool{
	"x-amz-signature": true, "file": true, "policy": true, "awsaccesskeyid": true, "signature": true,
	"bucket": true,
}

// Check verifies the form's fields (lower-case names; "key" already has
// ${filename} substituted; "bucket" set to the request's bucket) against
// the policy at time now: not expired, every condition met, and every
// field but the exempt ones named by some condition, as S3 requires.
func (p *PostPolicy) Check(fields map[string]string, now time.Time) error {
	if !now.Before(p.Expiration) {
		return ErrPostPolicyExpired
	}
	named := map[string]bool{}
	for _, c := range p.Conditions {
		named[c.Field] = true
		v := fields[c.Field]
		switch c.Op {
		case "eq":
			if v != c.Value {
				return policyDenied("Policy Condition failed: [\"eq\", \"$" + c.Field + "\", \"" + c.Value + "\"]")
			}
		case "starts-with":
			ok := strings.HasPrefix(v, c.Value)
			if c.Field == "content-type" && ok && strings.Contains(v, ",") {
				// Each of a list of content types must match.
				for t := range strings.SplitSeq(v, ",") {
					ok = ok && strings.HasPrefix(strings.TrimSpace(t), c.Value)
				}
			}
			if !ok {
				return policyDenied("Policy Condition failed: [\"starts-with\", \"$" + c.Field + "\", \"" + c.Value + "\"]")
			}
		}
	}
	for f := range fields {
		if !named[f] && !postFieldsExempt[f] && !strings.HasPrefix(f, "x-ignore-") {
			return policyDenied("Extra input fields: " + f)
		}
	}
	return nil
}

// CheckLength checks the file's length against the content-length-range.
func (p *PostPolicy) CheckLength(n int64) error {
	if !p.HasRange {
		return nil
	}
	if n < p.MinLength {
		return ErrPostEntityTooSmall
	}
	if n > p.MaxLength {
		return ErrPostEntityTooLarge
	}
	return nil
}

// VerifyPost checks the signature of a POST form: SigV4 (x-amz-algorithm,
// x-amz-credential, x-amz-date, x-amz-signature over the base64 policy)
// or, when AllowV2, Signature V2 (AWSAccessKeyId, signature: base64
// HMAC-SHA1 of the policy). fields have lower-case names. It does not
// check the policy's conditions (ParsePostPolicy, Check).
func (v *Verifier) VerifyPost(fields map[string]string) (*Auth, error) {
	policy := fields["policy"]
	if sig, ok := fields["x-amz-signature"]; ok {
		if fields["x-amz-algorithm"] != Algorithm {
			return nil, ErrUnsupportedAlgorithm
		}
		c, reason := parseCredential(fields["x-amz-credential"])
		if reason != "" {
			return nil, &Error{Code: "InvalidArgument", Status: http.StatusBadRequest, Message: "Invalid x-amz-credential: " + reason}
		}
		t, err := time.Parse(TimeFormat, fields["x-amz-date"])
		if err != nil {
			return nil, &Error{Code: "InvalidArgument", Status: http.StatusBadRequest, Message: "Invalid x-amz-date"}
		}
		if c.scope.date != t.Format(dateFormat) {
			return nil, &Error{Code: "InvalidArgument", Status: http.StatusBadRequest,
				Message: "Invalid credential date \"" + c.scope.date + "\". This date is not the same as x-amz-date."}
		}
		if s := v.service(); c.scope.service != s {
			return nil, &Error{Code: "InvalidArgument", Status: http.StatusBadRequest, Message: "Invalid service in x-amz-credential"}
		}
		if policy == "" {
			return nil, policyRequired()
		}
		secret, ok := v.Lookup(c.accessKey)
		if !ok {
			e := clone(ErrInvalidAccessKeyID)
			e.AccessKeyID = c.accessKey
			return nil, e
		}
		key := v.keys.get(c.accessKey, secret, c.scope)
		m := hmac.New(sha256.New, key[:])
		m.Write([]byte(policy))
		want := m.Sum(nil)
		got, err := hex.DecodeString(sig)
		if err != nil || !hmac.Equal(want, got) {
			e := clone(ErrSignatureDoesNotMatch)
			e.AccessKeyID, e.SignatureProvided, e.StringToSign = c.accessKey, sig, policy
			return nil, e
		}
		return &Auth{AccessKey: c.accessKey, PayloadHash: UnsignedPayload, Signature: sig, Time: t,
			Region: c.scope.region, Service: c.scope.service, scope: c.scope, amzDate: fields["x-amz-date"]}, nil
	}
	if ak, ok := fields["awsaccesskeyid"]; ok {
		if !v.v2Allowed() {
			return nil, ErrUnsupportedAlgorithm
		}
		if policy == "" {
			return nil, policyRequired()
		}
		secret, ok := v.Lookup(ak)
		if !ok {
			e := clone(ErrInvalidAccessKeyID)
			e.AccessKeyID = ak
			return nil, e
		}
		sig := fields["signature"]
		got, err := base64.StdEncoding.DecodeString(sig)
		m := hmac.New(sha1.New, []byte(secret))
		m.Write([]byte(policy))
		if err != nil || !hmac.Equal(m.Sum(nil), got) {
			e := clone(ErrSignatureDoesNotMatch)
			e.AccessKeyID, e.SignatureProvided, e.StringToSign = ak, sig, policy
			return nil, e
		}
		return &Auth{AccessKey: ak, PayloadHash: UnsignedPayload, Signature: sig}, nil
	}
	// No signature: an anonymous form, which s3seal never accepts.
	return nil, ErrMissingAuth
}

func policyRequired() *Error {
	return &Error{Code: "InvalidArgument", Status: http.StatusBadRequest,
		Message: "Bucket POST must contain a field named 'policy'.  If it is specified, please check the order of the fields."}
}

// SignPostPolicy signs a base64 policy with SigV4 for secret and the
// credential scope date/region/service (for tests and tools).
func SignPostPolicy(secret, date, region, service, policyB64 string) string {
	key := deriveKey(secret, scope{date: date, region: region, service: service})
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(policyB64))
	return hex.EncodeToString(m.Sum(nil))
}
