package kmsapi

import (
	"encoding/hex"
	"maps"
	"regexp"
	"slices"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
)

// Grants.

// grantOperations are the grant operations that mean something for a
// symmetric encryption key.
var grantOperations = []string{
	"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
	"ReEncryptFrom", "ReEncryptTo", "CreateGrant", "RetireGrant", "DescribeKey",
	"GetPublicKey", // RSA key pairs
}

// asymmetricOperations are valid grant operations that no key here can
// perform.
var asymmetricOperations = []string{
	"Sign", "Verify", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
	"GenerateMac", "VerifyMac", "DeriveSharedSecret",
}

var (
	principalRE = regexp.MustCompile(`^arn:aws:iam::[0-9]{12}:(root|user/[\w+=,.@-]+|role/[\w+=,.@/-]+)$`)
	accountIDRE = regexp.MustCompile(`^[0-9]{12}$`)
	grantNameRE = regexp.MustCompile(`^[a-zA-Z0-9:/_-]+$`)
)

// principal validates a grantee or retiring principal: an IAM ARN or an
// account id (its root).
func principal(param, p string) (string, error) {
	switch {
	case accountIDRE.MatchString(p):
		return "arn:aws:iam::" + p + ":root", nil
	case principalRE.MatchString(p):
		return p, nil
	}
	return "", apiErr(codeInvalidArn, "%s %q is not a principal ARN: want arn:aws:iam::%s:user/<access key>, arn:aws:iam::%s:root or the account id.", param, p, Account, Account)
}

func grantEntry(ki *keyring.KeyInfo, g *keyring.Grant) grantListEntry {
	e := grantListEntry{
		KeyID: ki.Arn, GrantID: g.ID, Name: g.Name, CreationDate: epoch(g.CreationDate),
		GranteePrincipal: g.GranteePrincipal, RetiringPrincipal: g.RetiringPrincipal,
		IssuingAccount: RootARN, Operations: slices.Clone(g.Operations),
	}
	if gc := g.Constraints; gc != nil {
		e.Constraints = &grantConstraints{EncryptionContextEquals: gc.EncryptionContextEquals, EncryptionContextSubset: gc.EncryptionContextSubset}
	}
	return e
}

func opCreateGrant(s *Server, c *call, in *createGrantInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, GrantName: in.Name, GranteePrincipal: in.GranteePrincipal,
		RetiringPrincipal: in.RetiringPrincipal, Operations: in.Operations, DryRun: in.DryRun}
	if in.Constraints != nil {
		c.ev.RequestParameters.Constraints = in.Constraints
	}
	if in.GranteePrincipal == "" {
		return nil, missing("granteePrincipal")
	}
	grantee, err := principal("GranteePrincipal", in.GranteePrincipal)
	if err != nil {
		return nil, err
	}
	retiring := ""
	if in.RetiringPrincipal != "" {
		if retiring, err = principal("RetiringPrincipal", in.RetiringPrincipal); err != nil {
			return nil, err
		}
	}
	if len(in.Operations) == 0 {
		return nil, missing("operations")
	}
	ops := slices.Clone(in.Operations)
	slices.Sort(ops)
	ops = slices.Compact(ops)
	for _, op := range ops {
		if slices.Contains(asymmetricOperations, op) {
			return nil, validation("Grant operation %s is not valid for a symmetric encryption key.", op)
		}
		if !slices.Contains(grantOperations, op) {
			return nil, validation("1 validation error detected: Value '%s' at 'operations' failed to satisfy constraint: Member must satisfy enum value set", op)
		}
	}
	if in.Name != "" && (len(in.Name) > 256 || !grantNameRE.MatchString(in.Name)) {
		return nil, validation("Grant name must be 1 to 256 characters of a-z, A-Z, 0-9, :, /, _ and -.")
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	var gc *keyring.GrantConstraints
	if in.Constraints != nil && (in.Constraints.EncryptionContextEquals != nil || in.Constraints.EncryptionContextSubset != nil) {
		gc = &keyring.GrantConstraints{
			EncryptionContextEquals: maps.Clone(in.Constraints.EncryptionContextEquals),
			EncryptionContextSubset: maps.Clone(in.Constraints.EncryptionContextSubset),
		}
	}
	ki, err := s.key(c, in.KeyID, "keyId")
	if err != nil {
		return nil, err
	}
	cond := map[string][]string{
		"kms:grantoperations":       ops,
		"kms:granteeprincipal":      {grantee},
		"kms:grantisforawsresource": {"false"},
	}
	if retiring != "" {
		cond["kms:retiringprincipal"] = []string{retiring}
	}
	if gc != nil {
		if gc.EncryptionContextEquals != nil {
			cond["kms:grantconstrainttype"] = append(cond["kms:grantconstrainttype"], "EncryptionContextEquals")
		}
		if gc.EncryptionContextSubset != nil {
			cond["kms:grantconstrainttype"] = append(cond["kms:grantconstrainttype"], "EncryptionContextSubset")
		}
	}
	// A grantee holding CreateGrant may pass on no more than it holds.
	fits := func(g *keyring.Grant) bool {
		for _, op := range ops {
			if !slices.Contains(g.Operations, op) {
				return false
			}
		}
		return atLeastAsStrict(gc, g.Constraints)
	}
	if err := s.authorize(c, ki, access{action: "kms:CreateGrant", grantOp: "CreateGrant", extra: cond, grantFits: fits}); err != nil {
		return nil, err
	}
	if ki.KeyState == kms.KeyPendingDeletion {
		return nil, usableState(ki)
	}
	if in.DryRun {
		return nil, dryRun()
	}
	g, err := s.kr.CreateGrant(ki.KeyID, keyring.Grant{
		Name: in.Name, GranteePrincipal: grantee, RetiringPrincipal: retiring, Operations: ops, Constraints: gc,
	})
	if err != nil {
		return nil, err
	}
	c.ev.ResponseElements = &kms.AuditResponse{GrantID: g.ID}
	return &createGrantOutput{GrantID: g.ID, GrantToken: grantToken(ki.KeyID, g.ID)}, nil
}

func opListGrants(s *Server, c *call, in *listGrantsInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, GrantID: in.GrantID, GranteePrincipal: in.GranteePrincipal,
		Marker: in.Marker, Limit: deref(in.Limit)}
	var out *listGrantsOutput
	err := s.manage(c, in.KeyID, "kms:ListGrants", nil, func(ki *keyring.KeyInfo) error {
		var gs []*keyring.Grant
		for i := range ki.Grants {
			g := &ki.Grants[i]
			if (in.GrantID == "" || g.ID == in.GrantID) && (in.GranteePrincipal == "" || g.GranteePrincipal == in.GranteePrincipal) {
				gs = append(gs, g)
			}
		}
		start, end, next, err := page(len(gs), in.Limit, in.Marker, 50)
		if err != nil {
			return err
		}
		out = &listGrantsOutput{Grants: []grantListEntry{}, NextMarker: next, Truncated: next != ""}
		for _, g := range gs[start:end] {
			out.Grants = append(out.Grants, grantEntry(ki, g))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func opListRetirableGrants(s *Server, c *call, in *listRetirableGrantsInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{RetiringPrincipal: in.RetiringPrincipal, Marker: in.Marker, Limit: deref(in.Limit)}
	if in.RetiringPrincipal == "" {
		return nil, missing("retiringPrincipal")
	}
	if err := s.authorizeAccount(c, "kms:ListRetirableGrants"); err != nil {
		return nil, err
	}
	all, err := s.kr.Grants()
	if err != nil {
		return nil, err
	}
	var entries []grantListEntry
	for _, id := range slices.Sorted(maps.Keys(all)) {
		ki := &keyring.KeyInfo{}
		ki.KeyID, ki.Arn = id, keyring.ARN(id)
		for i := range all[id] {
			if g := &all[id][i]; g.RetiringPrincipal == in.RetiringPrincipal {
				entries = append(entries, grantEntry(ki, g))
			}
		}
	}
	start, end, next, err := page(len(entries), in.Limit, in.Marker, 50)
	if err != nil {
		return nil, err
	}
	out := &listGrantsOutput{Grants: append([]grantListEntry{}, entries[start:end]...), NextMarker: next, Truncated: next != ""}
	return out, nil
}

func checkGrantID(id string) error {
	if len(id) != 64 {
		return apiErr(codeInvalidGrantID, "Grant ID %q is not valid.", id)
	}
	if _, err := hex.DecodeString(id); err != nil {
		return apiErr(codeInvalidGrantID, "Grant ID %q is not valid.", id)
	}
	return nil
}

// findGrant returns the grant id of key ki.
func findGrant(ki *keyring.KeyInfo, id string) (*keyring.Grant, error) {
	for i := range ki.Grants {
		if ki.Grants[i].ID == id {
			return &ki.Grants[i], nil
		}
	}
	return nil, apiErr(kms.CodeNotFound, "Grant ID %s not found on %s.", id, ki.Arn)
}

// opRetireGrant retires a grant named by its token, or by key and grant
// id. Its retiring principal may, so may its grantee if the grant
// includes RetireGrant, and so may whoever the key policy allows
// kms:RetireGrant (the administrators, by default).
func opRetireGrant(s *Server, c *call, in *retireGrantInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, GrantID: in.GrantID, DryRun: in.DryRun}
	keyID, grantID := in.KeyID, in.GrantID
	if in.GrantToken != "" {
		tk, tg, ok := parseGrantToken(in.GrantToken)
		if !ok {
			return nil, apiErr(codeInvalidGrantToken, "The grant token is not valid.")
		}
		if (keyID != "" && keyID != tk && keyID != keyring.ARN(tk)) || (grantID != "" && grantID != tg) {
			return nil, validation("The grant token names another grant than KeyId and GrantId.")
		}
		keyID, grantID = tk, tg
		c.ev.RequestParameters.GrantID = grantID
	} else if keyID == "" || grantID == "" {
		return nil, validation("Specify GrantToken, or KeyId and GrantId.")
	}
	if err := checkGrantID(grantID); err != nil {
		return nil, err
	}
	ki, err := s.key(c, keyID, "keyId")
	if err != nil {
		return nil, err
	}
	g, err := findGrant(ki, grantID)
	if err != nil {
		return nil, err
	}
	byGrant := slices.Contains(c.who.principals, g.RetiringPrincipal) ||
		(slices.Contains(c.who.principals, g.GranteePrincipal) && slices.Contains(g.Operations, "RetireGrant"))
	if !byGrant {
		if err := s.authorize(c, ki, access{action: "kms:RetireGrant"}); err != nil {
			return nil, err
		}
	}
	if in.DryRun {
		return nil, dryRun()
	}
	return &empty{}, s.kr.DeleteGrant(ki.KeyID, grantID)
}

func opRevokeGrant(s *Server, c *call, in *retireGrantInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, GrantID: in.GrantID, DryRun: in.DryRun}
	if in.GrantID == "" {
		return nil, missing("grantId")
	}
	if err := checkGrantID(in.GrantID); err != nil {
		return nil, err
	}
	return &empty{}, s.manage(c, in.KeyID, "kms:RevokeGrant", nil, func(ki *keyring.KeyInfo) error {
		if _, err := findGrant(ki, in.GrantID); err != nil {
			return err
		}
		if in.DryRun {
			return dryRun()
		}
		return s.kr.DeleteGrant(ki.KeyID, in.GrantID)
	})
}
