package kmsapi

import (
	"encoding/base64"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/kms/policy"
)

// Key lifecycle and management operations.

// maxOnDemandRotations is AWS KMS's quota of on-demand rotations per key.
const maxOnDemandRotations = 10

func missing(param string) error {
	return validation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", param)
}

// key resolves a key id, key ARN, alias name or alias ARN parameter to
// the key, in any state.
func (s *Server) key(c *call, keyID, param string) (*keyring.KeyInfo, error) {
	if keyID == "" {
		return nil, missing(param)
	}
	if len(keyID) > 2048 {
		return nil, validation("Value at '%s' failed to satisfy constraint: Member must have length less than or equal to 2048", param)
	}
	ki, err := s.kr.Key(keyID)
	if err != nil {
		return nil, err
	}
	c.resource(ki.Arn)
	return ki, nil
}

// requestAlias is the kms:RequestAlias condition key of a request that
// named its key by alias.
func requestAlias(keyID string) map[string][]string {
	if i := strings.Index(keyID, "alias/"); i >= 0 && (i == 0 || strings.HasPrefix(keyID, "arn:")) {
		return map[string][]string{"kms:requestalias": {keyID[i:]}}
	}
	return nil
}

// usableState is the keyring's rule for cryptographic operations, for
// the dry runs that stop before them.
func usableState(ki *keyring.KeyInfo) error {
	switch ki.KeyState {
	case kms.KeyEnabled:
		return nil
	case kms.KeyDisabled:
		return &kms.Error{Code: kms.CodeDisabled, Message: ki.Arn + " is disabled."}
	}
	return &kms.Error{Code: kms.CodeInvalidState, Message: ki.Arn + " is pending deletion."}
}

func dryRun() error {
	return apiErr(codeDryRun, "The request would have succeeded, but the DryRun option is set.")
}

func toMetadata(ki *keyring.KeyInfo) keyMetadata {
	md := keyMetadata{
		AWSAccountID: Account, KeyID: ki.KeyID, Arn: ki.Arn, CreationDate: epoch(ki.CreationDate),
		Enabled: ki.KeyState == kms.KeyEnabled, Description: ki.Description, KeyUsage: "ENCRYPT_DECRYPT",
		KeyState: string(ki.KeyState), DeletionDate: epoch(ki.DeletionDate), Origin: "AWS_KMS", KeyManager: "CUSTOMER",
		CustomerMasterKeySpec: "SYMMETRIC_DEFAULT", KeySpec: "SYMMETRIC_DEFAULT", EncryptionAlgorithms: []string{"SYMMETRIC_DEFAULT"},
	}
	if ki.Asymmetric() {
		md.CustomerMasterKeySpec, md.KeySpec, md.EncryptionAlgorithms = ki.KeySpec, ki.KeySpec, ki.EncryptionAlgorithms
	}
	if n := len(ki.Versions); n > 0 {
		md.CurrentKeyMaterialID = ki.Versions[n-1].MaterialID
	}
	if ki.Origin != "" {
		// A key held in an HSM (keyring custom key store).
		md.Origin, md.CustomKeyStoreID = ki.Origin, ki.CustomKeyStoreID
	}
	return md
}

// page slices a listing of n items: Limit 1 to 1000 (default def),
// Marker an opaque offset from a previous NextMarker.
func page(n int, limit *int, marker string, def int) (start, end int, next string, err error) {
	l := def
	if limit != nil {
		if *limit < 1 || *limit > 1000 {
			return 0, 0, "", validation("Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000", *limit)
		}
		l = *limit
	}
	if marker != "" {
		b, derr := base64.RawURLEncoding.DecodeString(marker)
		off, perr := strconv.Atoi(strings.TrimPrefix(string(b), "s3seal:"))
		if derr != nil || perr != nil || !strings.HasPrefix(string(b), "s3seal:") || off < 0 || off > n {
			return 0, 0, "", apiErr(codeInvalidMarker, "The marker is not valid.")
		}
		start = off
	}
	end = min(start+l, n)
	if end < n {
		next = base64.RawURLEncoding.EncodeToString([]byte("s3seal:" + strconv.Itoa(end)))
	}
	return start, end, next, nil
}

var (
	aliasNameRE = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]+$`)
	tagKeyMax   = 128
	tagValueMax = 256
)

func checkAliasName(name string) error {
	switch {
	case name == "":
		return missing("aliasName")
	case len(name) > 256:
		return validation("Value at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256")
	case strings.HasPrefix(name, "alias/aws/"):
		return apiErr(codeInvalidAliasName, "Alias %s: names that begin with alias/aws/ are reserved for AWS managed keys.", name)
	case !aliasNameRE.MatchString(name):
		return validation("1 validation error detected: Value '%s' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$", name)
	}
	return nil
}

func checkTags(tags []tag) (map[string]string, error) {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		switch {
		case t.TagKey == "" || len(t.TagKey) > tagKeyMax:
			return nil, validation("TagKey must be 1 to %d characters", tagKeyMax)
		case len(t.TagValue) > tagValueMax:
			return nil, validation("TagValue must be at most %d characters", tagValueMax)
		case strings.HasPrefix(strings.ToLower(t.TagKey), "aws:"):
			return nil, apiErr(codeTag, "Tag keys beginning with aws: are reserved.")
		}
		out[t.TagKey] = t.TagValue
	}
	if len(out) > keyring.MaxTags {
		return nil, apiErr(codeTag, "A key has at most %d tags.", keyring.MaxTags)
	}
	return out, nil
}

func tagConditions(tags map[string]string) map[string][]string {
	m := map[string][]string{}
	var keys []string
	for k, v := range tags {
		m["aws:requesttag/"+strings.ToLower(k)] = []string{v}
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		slices.Sort(keys)
		m["aws:tagkeys"] = keys
	}
	return m
}

// parsePolicy validates a key policy a caller sets and, unless bypassed,
// refuses one that would lock the caller out of changing it again (AWS's
// policy lockout safety check).
func (s *Server) parsePolicy(c *call, text, keyARN string, bypass bool) error {
	if len(text) > policy.MaxSize {
		return apiErr(codeMalformedPolicy, "The key policy is %d bytes; the limit is %d.", len(text), policy.MaxSize)
	}
	doc, err := policy.Parse([]byte(text))
	if err != nil {
		return err
	}
	if bypass {
		return nil
	}
	dec := doc.Evaluate(&policy.Request{Principals: c.who.principals, Action: "kms:PutKeyPolicy", Resource: keyARN,
		Context: s.conditionContext(c, nil, &access{})})
	if dec != policy.Allowed {
		return apiErr(codeMalformedPolicy, "The new key policy will not allow you to update the key policy in the future.")
	}
	return nil
}

func opCreateKey(s *Server, c *call, in *createKeyInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{Description: in.Description, KeyUsage: in.KeyUsage, KeySpec: in.KeySpec,
		Origin: in.Origin, Policy: in.Policy, BypassPolicyLockoutSafetyCheck: in.BypassPolicyLockoutSafetyCheck}
	if err := s.authorizeAccount(c, "kms:CreateKey"); err != nil {
		return nil, err
	}
	spec := in.KeySpec
	if spec == "" {
		spec = in.CustomerMasterKeySpec
	}
	switch {
	case in.KeySpec != "" && in.CustomerMasterKeySpec != "" && in.KeySpec != in.CustomerMasterKeySpec:
		return nil, validation("KeySpec and CustomerMasterKeySpec differ")
	case in.KeyUsage != "" && in.KeyUsage != "ENCRYPT_DECRYPT",
		spec != "" && spec != kms.KeySpecSymmetric && spec != kms.KeySpecRSA3072 && spec != kms.KeySpecRSA4096:
		return nil, apiErr(codeUnsupported, "s3seal's KMS makes encryption keys only (KeyUsage ENCRYPT_DECRYPT): KeySpec SYMMETRIC_DEFAULT, RSA_3072 or RSA_4096.")
	case in.Origin != "" && in.Origin != keyring.OriginKMS && in.Origin != keyring.OriginCloudHSM:
		return nil, apiErr(codeUnsupported, "s3seal's KMS makes its own key material (Origin AWS_KMS) or keys in its HSM key store (Origin AWS_CLOUDHSM).")
	case in.XksKeyID != "":
		return nil, apiErr(codeUnsupported, "s3seal's KMS has no external key stores.")
	case (in.Origin == keyring.OriginCloudHSM) != (in.CustomKeyStoreID != ""):
		return nil, validation("Origin AWS_CLOUDHSM and CustomKeyStoreId must be given together.")
	case in.CustomKeyStoreID != "" && in.CustomKeyStoreID != s.kr.CustomKeyStoreID():
		// The keyring has at most one key store: the HSM it was
		// configured with (s3seal keys describe shows its id).
		return nil, apiErr(codeCustomKeyStore404, "Custom key store %q not found.", in.CustomKeyStoreID)
	case in.CustomKeyStoreID != "" && spec != "" && spec != kms.KeySpecSymmetric:
		return nil, apiErr(codeUnsupported, "s3seal's HSM key store holds SYMMETRIC_DEFAULT keys only.")
	case in.MultiRegion:
		return nil, apiErr(codeUnsupported, "s3seal's KMS has no multi-Region keys.")
	case len(in.Description) > 8192:
		return nil, validation("Description must be at most 8192 characters")
	}
	tags, err := checkTags(in.Tags)
	if err != nil {
		return nil, err
	}
	if in.Policy != "" {
		if err := s.parsePolicy(c, in.Policy, keyring.ARN("*"), in.BypassPolicyLockoutSafetyCheck); err != nil {
			return nil, err
		}
	}
	ki, err := s.kr.CreateKeyWith(keyring.KeyOptions{Description: in.Description, Policy: in.Policy, Tags: tags, KeySpec: spec, InKeyStore: in.CustomKeyStoreID != ""})
	if err != nil {
		return nil, err
	}
	c.resource(ki.Arn)
	c.ev.ResponseElements = &kms.AuditResponse{KeyID: ki.KeyID}
	return &keyMetadataOutput{KeyMetadata: toMetadata(ki)}, nil
}

func opDescribeKey(s *Server, c *call, in *describeKeyInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ki, err := s.key(c, in.KeyID, "keyId")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ki, access{action: "kms:DescribeKey", grantOp: "DescribeKey", extra: requestAlias(in.KeyID)}); err != nil {
		return nil, err
	}
	return &keyMetadataOutput{KeyMetadata: toMetadata(ki)}, nil
}

func opListKeys(s *Server, c *call, in *listInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{Marker: in.Marker, Limit: deref(in.Limit)}
	if err := s.authorizeAccount(c, "kms:ListKeys"); err != nil {
		return nil, err
	}
	mds, err := s.kr.ListKeys()
	if err != nil {
		return nil, err
	}
	start, end, next, err := page(len(mds), in.Limit, in.Marker, 100)
	if err != nil {
		return nil, err
	}
	out := &listKeysOutput{Keys: []keyListEntry{}, NextMarker: next, Truncated: next != ""}
	for _, md := range mds[start:end] {
		out.Keys = append(out.Keys, keyListEntry{KeyID: md.KeyID, KeyArn: md.Arn})
	}
	return out, nil
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func aliasARN(name string) string {
	return "arn:aws:kms:" + keyring.Region + ":" + Account + ":" + name
}

func opListAliases(s *Server, c *call, in *listInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, Marker: in.Marker, Limit: deref(in.Limit)}
	if err := s.authorizeAccount(c, "kms:ListAliases"); err != nil {
		return nil, err
	}
	var only string
	if in.KeyID != "" {
		ki, err := s.key(c, in.KeyID, "keyId")
		if err != nil {
			return nil, err
		}
		only = ki.KeyID
	}
	aliases, err := s.kr.ListAliases()
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(aliases))
	names = slices.DeleteFunc(names, func(n string) bool { return only != "" && aliases[n] != only })
	start, end, next, err := page(len(names), in.Limit, in.Marker, 50)
	if err != nil {
		return nil, err
	}
	out := &listAliasesOutput{Aliases: []aliasListEntry{}, NextMarker: next, Truncated: next != ""}
	for _, n := range names[start:end] {
		out.Aliases = append(out.Aliases, aliasListEntry{AliasName: n, AliasArn: aliasARN(n), TargetKeyID: aliases[n]})
	}
	return out, nil
}

// aliasTarget checks that a key may be an alias's target.
func aliasTarget(ki *keyring.KeyInfo) error {
	if ki.KeyState == kms.KeyPendingDeletion {
		return usableState(ki)
	}
	return nil
}

func opCreateAlias(s *Server, c *call, in *aliasInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{AliasName: in.AliasName, TargetKeyID: in.TargetKeyID}
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	ki, err := s.key(c, in.TargetKeyID, "targetKeyId")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ki, access{action: "kms:CreateAlias"}); err != nil {
		return nil, err
	}
	if err := aliasTarget(ki); err != nil {
		return nil, err
	}
	return &empty{}, s.kr.CreateAlias(in.AliasName, ki.KeyID)
}

func opUpdateAlias(s *Server, c *call, in *aliasInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{AliasName: in.AliasName, TargetKeyID: in.TargetKeyID}
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	old, err := s.key(c, in.AliasName, "aliasName")
	if err != nil {
		return nil, err
	}
	ki, err := s.key(c, in.TargetKeyID, "targetKeyId")
	if err != nil {
		return nil, err
	}
	for _, k := range []*keyring.KeyInfo{old, ki} {
		if err := s.authorize(c, k, access{action: "kms:UpdateAlias"}); err != nil {
			return nil, err
		}
	}
	if err := aliasTarget(ki); err != nil {
		return nil, err
	}
	return &empty{}, s.kr.UpdateAlias(in.AliasName, ki.KeyID)
}

func opDeleteAlias(s *Server, c *call, in *aliasInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{AliasName: in.AliasName}
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	ki, err := s.key(c, in.AliasName, "aliasName")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ki, access{action: "kms:DeleteAlias"}); err != nil {
		return nil, err
	}
	return &empty{}, s.kr.DeleteAlias(in.AliasName)
}

// manage runs a management operation on the key keyID names: resolve,
// authorize action, apply fn to the canonical key id.
func (s *Server) manage(c *call, keyID, action string, extra map[string][]string, fn func(ki *keyring.KeyInfo) error) error {
	ki, err := s.key(c, keyID, "keyId")
	if err != nil {
		return err
	}
	if err := s.authorize(c, ki, access{action: action, extra: extra}); err != nil {
		return err
	}
	return fn(ki)
}

func opUpdateKeyDescription(s *Server, c *call, in *updateDescriptionInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, Description: in.Description}
	if len(in.Description) > 8192 {
		return nil, validation("Description must be at most 8192 characters")
	}
	return &empty{}, s.manage(c, in.KeyID, "kms:UpdateKeyDescription", nil, func(ki *keyring.KeyInfo) error {
		return s.kr.SetDescription(ki.KeyID, in.Description)
	})
}

func opEnableKey(s *Server, c *call, in *keyIDInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID}
	return &empty{}, s.manage(c, in.KeyID, "kms:EnableKey", nil, func(ki *keyring.KeyInfo) error {
		return s.kr.EnableKey(ki.KeyID)
	})
}

func opDisableKey(s *Server, c *call, in *keyIDInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID}
	return &empty{}, s.manage(c, in.KeyID, "kms:DisableKey", nil, func(ki *keyring.KeyInfo) error {
		return s.kr.DisableKey(ki.KeyID)
	})
}

func opScheduleKeyDeletion(s *Server, c *call, in *scheduleDeletionInput) (any, error) {
	days := keyring.DefaultDeletionDays
	if in.PendingWindowInDays != nil {
		days = *in.PendingWindowInDays
	}
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, PendingWindowInDays: days}
	if days < keyring.MinDeletionDays || days > keyring.MaxDeletionDays {
		return nil, validation("PendingWindowInDays must be %d to %d, got %d", keyring.MinDeletionDays, keyring.MaxDeletionDays, days)
	}
	var out *scheduleDeletionOutput
	err := s.manage(c, in.KeyID, "kms:ScheduleKeyDeletion",
		map[string][]string{"kms:schedulekeydeletionpendingwindowindays": {strconv.Itoa(days)}},
		func(ki *keyring.KeyInfo) error {
			when, err := s.kr.ScheduleKeyDeletion(ki.KeyID, days)
			if err != nil {
				return err
			}
			out = &scheduleDeletionOutput{KeyID: ki.Arn, DeletionDate: epoch(when), KeyState: string(kms.KeyPendingDeletion), PendingWindowInDays: days}
			c.ev.ResponseElements = &kms.AuditResponse{KeyID: ki.Arn, DeletionDate: when.UTC().Format(time.RFC3339)}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func opCancelKeyDeletion(s *Server, c *call, in *keyIDInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID}
	var out *keyIDOutput
	err := s.manage(c, in.KeyID, "kms:CancelKeyDeletion", nil, func(ki *keyring.KeyInfo) error {
		out = &keyIDOutput{KeyID: ki.Arn}
		return s.kr.CancelKeyDeletion(ki.KeyID)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func opEnableKeyRotation(s *Server, c *call, in *enableRotationInput) (any, error) {
	days := keyring.DefaultRotationDays
	if in.RotationPeriodInDays != nil {
		days = *in.RotationPeriodInDays
	}
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, RotationPeriodInDays: days}
	if days < keyring.MinRotationDays || days > keyring.MaxRotationDays {
		return nil, validation("1 validation error detected: Value '%d' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between %d and %d", days, keyring.MinRotationDays, keyring.MaxRotationDays)
	}
	return &empty{}, s.manage(c, in.KeyID, "kms:EnableKeyRotation",
		map[string][]string{"kms:rotationperiodindays": {strconv.Itoa(days)}},
		func(ki *keyring.KeyInfo) error { return s.kr.EnableRotation(ki.KeyID, days) })
}

func opDisableKeyRotation(s *Server, c *call, in *keyIDInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID}
	return &empty{}, s.manage(c, in.KeyID, "kms:DisableKeyRotation", nil, func(ki *keyring.KeyInfo) error {
		return s.kr.DisableRotation(ki.KeyID)
	})
}

func opRotateKeyOnDemand(s *Server, c *call, in *keyIDInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID}
	var out *keyIDOutput
	err := s.manage(c, in.KeyID, "kms:RotateKeyOnDemand", nil, func(ki *keyring.KeyInfo) error {
		if err := usableState(ki); err != nil {
			return err
		}
		n := 0
		for _, v := range ki.Versions[1:] {
			if !v.Automatic {
				n++
			}
		}
		if n >= maxOnDemandRotations {
			return apiErr(kms.CodeLimitExceeded, "The key has been rotated on demand %d times, the most allowed.", n)
		}
		if _, err := s.kr.RotateKey(ki.KeyID); err != nil {
			return err
		}
		out = &keyIDOutput{KeyID: ki.KeyID}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func opGetKeyRotationStatus(s *Server, c *call, in *keyIDInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID}
	var out *rotationStatusOutput
	err := s.manage(c, in.KeyID, "kms:GetKeyRotationStatus", nil, func(ki *keyring.KeyInfo) error {
		out = &rotationStatusOutput{KeyID: ki.Arn}
		if r := ki.Rotation; r != nil {
			out.KeyRotationEnabled, out.RotationPeriodInDays, out.NextRotationDate = true, r.PeriodDays, epoch(r.NextRotation)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func opListKeyRotations(s *Server, c *call, in *listRotationsInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, Marker: in.Marker, Limit: deref(in.Limit)}
	first := 1 // ROTATIONS_ONLY: the versions after the first
	switch in.IncludeKeyMaterial {
	case "", "ROTATIONS_ONLY":
	case "ALL_KEY_MATERIAL":
		first = 0
	default:
		return nil, validation("IncludeKeyMaterial must be ROTATIONS_ONLY or ALL_KEY_MATERIAL")
	}
	var out *listRotationsOutput
	err := s.manage(c, in.KeyID, "kms:ListKeyRotations", nil, func(ki *keyring.KeyInfo) error {
		vs := ki.Versions[first:]
		start, end, next, err := page(len(vs), in.Limit, in.Marker, 100)
		if err != nil {
			return err
		}
		out = &listRotationsOutput{Rotations: []rotationsListEntry{}, NextMarker: next, Truncated: next != ""}
		for _, v := range vs[start:end] {
			e := rotationsListEntry{KeyID: ki.KeyID, KeyMaterialID: v.MaterialID, KeyMaterialState: "NON_CURRENT"}
			if v.Version == len(ki.Versions) {
				e.KeyMaterialState = "CURRENT"
			}
			if v.Version > 1 {
				e.RotationDate, e.RotationType = epoch(v.Created), "ON_DEMAND"
				if v.Automatic {
					e.RotationType = "AUTOMATIC"
				}
			}
			out.Rotations = append(out.Rotations, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func policyName(p *string) (string, error) {
	if p == nil || *p == "default" {
		return "default", nil
	}
	return "", apiErr(kms.CodeNotFound, "No such policy exists: %s (a key has one policy, \"default\").", *p)
}

func opGetKeyPolicy(s *Server, c *call, in *keyPolicyInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID}
	name, err := policyName(in.PolicyName)
	if err != nil {
		return nil, err
	}
	c.ev.RequestParameters.PolicyName = name
	var out *keyPolicyOutput
	err = s.manage(c, in.KeyID, "kms:GetKeyPolicy", nil, func(ki *keyring.KeyInfo) error {
		out = &keyPolicyOutput{Policy: ki.Policy, PolicyName: name}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func opPutKeyPolicy(s *Server, c *call, in *keyPolicyInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, Policy: in.Policy, BypassPolicyLockoutSafetyCheck: in.BypassPolicyLockoutSafetyCheck}
	name, err := policyName(in.PolicyName)
	if err != nil {
		return nil, err
	}
	c.ev.RequestParameters.PolicyName = name
	if in.Policy == "" {
		return nil, missing("policy")
	}
	return &empty{}, s.manage(c, in.KeyID, "kms:PutKeyPolicy", nil, func(ki *keyring.KeyInfo) error {
		if err := s.parsePolicy(c, in.Policy, ki.Arn, in.BypassPolicyLockoutSafetyCheck); err != nil {
			return err
		}
		return s.kr.SetPolicy(ki.KeyID, in.Policy)
	})
}

func opListKeyPolicies(s *Server, c *call, in *listInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID}
	return &listPoliciesOutput{PolicyNames: []string{"default"}},
		s.manage(c, in.KeyID, "kms:ListKeyPolicies", nil, func(*keyring.KeyInfo) error { return nil })
}

func opTagResource(s *Server, c *call, in *tagResourceInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID}
	if len(in.Tags) == 0 {
		return nil, missing("tags")
	}
	tags, err := checkTags(in.Tags)
	if err != nil {
		return nil, err
	}
	c.ev.RequestParameters.TagKeys = slices.Sorted(maps.Keys(tags))
	return &empty{}, s.manage(c, in.KeyID, "kms:TagResource", tagConditions(tags), func(ki *keyring.KeyInfo) error {
		err := s.kr.TagKey(ki.KeyID, tags)
		if kms.ErrorCode(err) == kms.CodeLimitExceeded {
			return apiErr(codeTag, "A key has at most %d tags.", keyring.MaxTags)
		}
		return err
	})
}

func opUntagResource(s *Server, c *call, in *tagResourceInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, TagKeys: in.TagKeys}
	if len(in.TagKeys) == 0 {
		return nil, missing("tagKeys")
	}
	keys := slices.Clone(in.TagKeys)
	slices.Sort(keys)
	return &empty{}, s.manage(c, in.KeyID, "kms:UntagResource", map[string][]string{"aws:tagkeys": keys}, func(ki *keyring.KeyInfo) error {
		return s.kr.UntagKey(ki.KeyID, in.TagKeys)
	})
}

func opListResourceTags(s *Server, c *call, in *listInput) (any, error) {
	c.ev.RequestParameters = kms.AuditParameters{KeyID: in.KeyID, Marker: in.Marker, Limit: deref(in.Limit)}
	var out *listTagsOutput
	err := s.manage(c, in.KeyID, "kms:ListResourceTags", nil, func(ki *keyring.KeyInfo) error {
		keys := slices.Sorted(maps.Keys(ki.Tags))
		start, end, next, err := page(len(keys), in.Limit, in.Marker, 50)
		if err != nil {
			return err
		}
		out = &listTagsOutput{Tags: []tag{}, NextMarker: next, Truncated: next != ""}
		for _, k := range keys[start:end] {
			out.Tags = append(out.Tags, tag{TagKey: k, TagValue: ki.Tags[k]})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
