package kmsapi_test

import (
	"os"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/kms/policy"
)

// TestREADMEPolicy checks the example key policy of the README's KMS API
// section says what the README says it does.
func TestREADMEPolicy(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "### The KMS API")
	if !ok {
		t.Fatal("no KMS API section in the README")
	}
	_, block, ok := strings.Cut(section, "```json\n")
	if !ok {
		t.Fatal("no policy example in the KMS API section")
	}
	block, _, _ = strings.Cut(block, "```")
	doc, err := policy.Parse([]byte(block))
	if err != nil {
		t.Fatalf("the README's policy does not parse: %v", err)
	}
	const key = "arn:aws:kms:local:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	u := func(name string) []string { return []string{"arn:aws:iam::000000000000:user/" + name} }
	bucket := func(b string) map[string][]string {
		return map[string][]string{"kms:encryptioncontext:s3seal:bucket": {b}, "kms:encryptioncontextkeys": {"s3seal:bucket"}}
	}
	for _, tc := range []struct {
		who     []string
		action  string
		ctx     map[string][]string
		allowed bool
	}{
		{[]string{"arn:aws:iam::000000000000:root"}, "kms:ScheduleKeyDeletion", nil, true},
		{u("alice"), "kms:DisableKey", nil, true},
		{u("alice"), "kms:PutKeyPolicy", nil, true},
		{u("alice"), "kms:Decrypt", bucket("photos"), false},
		{u("alice"), "kms:GenerateDataKey", bucket("photos"), false},
		{u("photos-proxy"), "kms:GenerateDataKey", bucket("photos"), true},
		{u("photos-proxy"), "kms:Decrypt", bucket("photos"), true},
		{u("photos-proxy"), "kms:Decrypt", bucket("backups"), false},
		{u("photos-proxy"), "kms:GenerateDataKey", nil, false},
		{u("photos-proxy"), "kms:DescribeKey", nil, true},
		{u("photos-proxy"), "kms:DisableKey", nil, false},
		{u("reader"), "kms:Decrypt", bucket("backups"), true},
		{u("reader"), "kms:DescribeKey", nil, true},
		{u("reader"), "kms:GenerateDataKey", bucket("backups"), false},
		{u("reader"), "kms:Encrypt", bucket("backups"), false},
		{u("eve"), "kms:Decrypt", bucket("photos"), false},
	} {
		got := doc.Evaluate(&policy.Request{Principals: tc.who, Action: tc.action, Resource: key, Context: tc.ctx}) == policy.Allowed
		if got != tc.allowed {
			t.Errorf("%s %s %v: allowed %v, the README says %v", tc.who[0], tc.action, tc.ctx, got, tc.allowed)
		}
	}
}
