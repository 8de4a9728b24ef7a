package kmsapi

import (
	"encoding/base64"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/kms/policy"
)

// access describes one authorization question: may the caller perform
// action on the key, for this request?
type access struct {
	action string // e.g. "kms:Decrypt"
	// grantOp is the grant operation that also allows it ("" when no
	// grant can: grants allow only the operations GrantOperation lists).
	grantOp string
	// encCtx is the request's encryption context, for the condition keys
	// and grant constraints of cryptographic operations; hasEC says the
	// operation takes one (so grant constraints apply).
	encCtx map[string]string
	hasEC  bool
	// extra holds further request condition keys (lower case).
	extra map[string][]string
	// grantFits, if set, replaces the encryption-context check of a grant
	// the caller holds (CreateGrant: the new grant must fit in it).
	grantFits func(g *keyring.Grant) bool
}

// document returns the parsed key policy, cached by its text.
func (s *Server) document(text string) (*policy.Document, error) {
	if d, ok := s.policies.Get(text); ok {
		return d, nil
	}
	d, err := policy.Parse([]byte(text))
	if err != nil {
		return nil, err
	}
	s.policies.Add(text, d)
	return d, nil
}

// conditionContext builds the condition keys of a request on a key.
func (s *Server) conditionContext(c *call, ki *keyring.KeyInfo, a *access) map[string][]string {
	m := make(map[string][]string, 16+len(a.encCtx)+len(a.extra))
	m["aws:principalarn"] = []string{c.who.arn}
	m["aws:username"] = []string{c.who.accessKey}
	m["aws:userid"] = []string{c.who.accessKey}
	m["aws:principaltype"] = []string{"User"}
	m["aws:principalaccount"] = []string{Account}
	m["kms:calleraccount"] = []string{Account}
	m["aws:securetransport"] = []string{strconv.FormatBool(c.secure)}
	m["aws:currenttime"] = []string{c.now.UTC().Format(time.RFC3339)}
	m["aws:epochtime"] = []string{strconv.FormatInt(c.now.Unix(), 10)}
	if c.sourceIP != "" {
		m["aws:sourceip"] = []string{c.sourceIP}
	}
	if ki != nil {
		m["kms:keyorigin"] = []string{"AWS_KMS"}
		m["kms:keyspec"] = []string{"SYMMETRIC_DEFAULT"}
		m["kms:keyusage"] = []string{"ENCRYPT_DECRYPT"}
		m["kms:multiregion"] = []string{"false"}
		if len(ki.Aliases) > 0 {
			m["kms:resourcealiases"] = slices.Clone(ki.Aliases)
		}
		for k, v := range ki.Tags {
			m["aws:resourcetag/"+strings.ToLower(k)] = []string{v}
		}
	}
	if a.hasEC {
		keys := make([]string, 0, len(a.encCtx))
		for k, v := range a.encCtx {
			lk := "kms:encryptioncontext:" + strings.ToLower(k)
			m[lk] = append(m[lk], v)
			keys = append(keys, k)
		}
		if len(keys) > 0 {
			slices.Sort(keys)
			m["kms:encryptioncontextkeys"] = keys
		}
		m["kms:encryptionalgorithm"] = []string{"SYMMETRIC_DEFAULT"}
	}
	maps.Copy(m, a.extra)
	return m
}

func denied(c *call, action, resource, why string) error {
	return apiErr(kms.CodeAccessDenied, "User: %s is not authorized to perform: %s on resource: %s %s", c.who.arn, action, resource, why)
}

// authorize decides a on key ki: an explicit Deny of the key policy
// refuses; an Allow of the policy or a matching grant allows; anything
// else is refused (AccessDeniedException).
func (s *Server) authorize(c *call, ki *keyring.KeyInfo, a access) error {
	doc, err := s.document(ki.Policy)
	if err != nil {
		// Policies are checked before they are stored; one that does not
		// parse (a file edited by hand) allows nothing.
		s.log.Error("kms api: stored key policy does not parse; it allows nothing", "key", ki.KeyID, "err", err)
		return denied(c, a.action, ki.Arn, "because the key policy is not valid")
	}
	dec := doc.Evaluate(&policy.Request{
		Principals: c.who.principals, Action: a.action, Resource: ki.Arn,
		Context: s.conditionContext(c, ki, &a),
	})
	switch dec {
	case policy.Allowed:
		return nil
	case policy.ExplicitDeny:
		return denied(c, a.action, ki.Arn, "with an explicit deny in a resource-based policy")
	}
	if a.grantOp != "" && s.grantAllows(c, ki, a) != nil {
		return nil
	}
	return denied(c, a.action, ki.Arn, "because no resource-based policy allows the "+a.action+" action")
}

// authorizeAccount decides an operation on no key: AWS authorizes those
// with IAM policies, which s3seal does not have, so only administrators
// may.
func (s *Server) authorizeAccount(c *call, action string) error {
	if c.who.admin {
		return nil
	}
	return denied(c, action, "*", "because no identity-based policy allows the "+action+" action (only the KMS administrators may)")
}

// grantAllows returns a grant of ki that allows a for the caller, or nil.
func (s *Server) grantAllows(c *call, ki *keyring.KeyInfo, a access) *keyring.Grant {
	for i := range ki.Grants {
		g := &ki.Grants[i]
		if !slices.Contains(c.who.principals, g.GranteePrincipal) || !slices.Contains(g.Operations, a.grantOp) {
			continue
		}
		if a.grantFits != nil {
			if !a.grantFits(g) {
				continue
			}
		} else if a.hasEC && !constraintsHold(g.Constraints, a.encCtx) {
			continue
		}
		return g
	}
	return nil
}

// constraintsHold checks grant constraints against an encryption context.
// As in AWS KMS, constraint keys match case-insensitively and values
// exactly.
func constraintsHold(gc *keyring.GrantConstraints, ec map[string]string) bool {
	if gc == nil {
		return true
	}
	lookup := func(k string) (string, bool) {
		if v, ok := ec[k]; ok {
			return v, true
		}
		for ek, v := range ec {
			if strings.EqualFold(ek, k) {
				return v, true
			}
		}
		return "", false
	}
	if gc.EncryptionContextEquals != nil {
		if len(gc.EncryptionContextEquals) != len(ec) {
			return false
		}
		for k, want := range gc.EncryptionContextEquals {
			if v, ok := lookup(k); !ok || v != want {
				return false
			}
		}
	}
	for k, want := range gc.EncryptionContextSubset {
		if v, ok := lookup(k); !ok || v != want {
			return false
		}
	}
	return true
}

// atLeastAsStrict reports whether child's constraints allow no context
// that parent's refuse (a grantee creating a grant from its own).
func atLeastAsStrict(child, parent *keyring.GrantConstraints) bool {
	if parent == nil {
		return true
	}
	if child == nil {
		return false
	}
	if parent.EncryptionContextEquals != nil {
		return maps.Equal(child.EncryptionContextEquals, parent.EncryptionContextEquals)
	}
	// Every pair the parent requires, the child requires too (in either
	// of its maps).
	for k, v := range parent.EncryptionContextSubset {
		if cv, ok := child.EncryptionContextEquals[k]; ok && cv == v {
			continue
		}
		if cv, ok := child.EncryptionContextSubset[k]; ok && cv == v {
			continue
		}
		return false
	}
	return true
}

// Grant tokens. AWS hands out opaque tokens that make a new grant usable
// before it has propagated; here grants are in force as soon as they are
// written, so a token only names its grant (for RetireGrant) and is
// checked for form.
const grantTokenPrefix = "s3seal-grant-1:"

func grantToken(keyID, grantID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(grantTokenPrefix + keyID + ":" + grantID))
}

// parseGrantToken returns the key and grant a token names.
func parseGrantToken(tok string) (keyID, grantID string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", "", false
	}
	rest, ok := strings.CutPrefix(string(b), grantTokenPrefix)
	if !ok {
		return "", "", false
	}
	keyID, grantID, ok = strings.Cut(rest, ":")
	if !ok || len(keyID) != 36 || len(grantID) != 64 {
		return "", "", false
	}
	if _, err := hex.DecodeString(grantID); err != nil {
		return "", "", false
	}
	return keyID, grantID, true
}

func checkGrantTokens(toks []string) error {
	if len(toks) > 10 {
		return validation("GrantTokens: at most 10 tokens")
	}
	for _, t := range toks {
		if _, _, ok := parseGrantToken(t); !ok {
			return apiErr(codeInvalidGrantToken, "The grant token is not valid.")
		}
	}
	return nil
}
