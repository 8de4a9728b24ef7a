package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

const (
	account = "000000000000"
	keyARN  = "arn:aws:kms:local:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	alice   = "arn:aws:iam::000000000000:user/alice"
	bob     = "arn:aws:iam::000000000000:user/bob"
)

var root = RootARN(account)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not json", `{`, "not a JSON object"},
		{"array", `[]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"trailing data", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}} {}`, "data after"},
		{"no statement", `{"Version":"2012-10-17"}`, "no statement"},
		{"empty statement list", `{"Statement":[]}`, "no statement"},
		{"unknown element", `{"Statement":[],"Foo":1}`, "Foo: unknown element"},
		{"element names are case sensitive", `{"statement":[]}`, "unknown element"},
		{"bad version", `{"Version":"2020-01-01","Statement":[]}`, "unknown version"},
		{"no effect", `{"Statement":{"Principal":"*","Action":"kms:*","Resource":"*"}}`, "no Effect"},
		{"effect case", `{"Statement":{"Effect":"allow","Principal":"*","Action":"kms:*","Resource":"*"}}`, "want Allow or Deny"},
		{"no principal", `{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}`, "Principal and NotPrincipal"},
		{"both principal forms", `{"Statement":{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"kms:*","Resource":"*"}}`, "Principal and NotPrincipal"},
		{"no action", `{"Statement":{"Effect":"Allow","Principal":"*","Resource":"*"}}`, "Action and NotAction"},
		{"no resource", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*"}}`, "Resource and NotResource"},
		{"resource not arn", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"key/x"}}`, "neither * nor an ARN"},
		{"action without service", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"Decrypt","Resource":"*"}}`, "want service:action"},
		{"action wildcard service", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"*:Decrypt","Resource":"*"}}`, "want service:action"},
		{"empty action list", `{"Statement":{"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}}`, "empty list"},
		{"principal string not star", `{"Statement":{"Effect":"Allow","Principal":"alice","Action":"kms:*","Resource":"*"}}`, "want \"*\""},
		{"principal bad type", `{"Statement":{"Effect":"Allow","Principal":{"IAM":"x"},"Action":"kms:*","Resource":"*"}}`, "unknown principal type"},
		{"principal not arn", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"kms:*","Resource":"*"}}`, "neither *, an account id nor an ARN"},
		{"principal wildcard arn", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/*"},"Action":"kms:*","Resource":"*"}}`, "wildcards are not allowed"},
		{"unknown operator", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringSortOf":{"k":"v"}}}}`, "unknown operator"},
		{"empty condition values", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"k":[]}}}}`, "non-empty list"},
		{"object condition value", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"k":{"a":1}}}}}`, "want a string"},
		{"bad number", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericLessThan":{"k":"ten"}}}}`, "not a number"},
		{"bad date", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}}`, "not a date"},
		{"bad cidr", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/99"}}}}`, "not an IP address"},
		{"bad bool", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}}`, "not true or false"},
		{"null ifexists", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NullIfExists":{"k":"true"}}}}`, "no IfExists"},
		{"duplicate key by case", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:A":"1","kms:a":"2"}}}}`, "appears twice"},
		{"duplicate sid", `{"Statement":[{"Sid":"x","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},{"Sid":"x","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}]}`, "not unique"},
		{"too large", `{"Id":"` + strings.Repeat("x", MaxSize) + `"}`, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error type %T", err)
			}
		})
	}
}

// defaultPolicy is AWS's default key policy for the account.
const defaultPolicy = `{
  "Version": "2012-10-17",
  "Id": "key-default-1",
  "Statement": [{
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
    "Action": "kms:*",
    "Resource": "*"
  }]
}`

// A policy with the statements the s3seal README shows: key
// administrators who cannot use the key, users who cannot manage it, a
// bucket-limited user, and an explicit deny.
const rolesPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "000000000000"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Admins", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::000000000000:user/alice"]},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
     "Resource": "*"},
    {"Sid": "Use for photos only", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/bob"},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
     "Resource": "*",
     "Condition": {"StringEquals": {"kms:EncryptionContext:s3seal:bucket": "photos"}}},
    {"Sid": "Describe", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/bob"},
     "Action": "kms:DescribeKey", "Resource": "*"},
    {"Sid": "Nobody deletes", "Effect": "Deny", "Principal": "*", "Action": "kms:ScheduleKeyDeletion", "Resource": "*",
     "Condition": {"StringNotEquals": {"aws:username": "root-operator"}}}
  ]
}`

func ec(pairs ...string) map[string][]string {
	m := map[string][]string{}
	var keys []string
	for i := 0; i+1 < len(pairs); i += 2 {
		m["kms:encryptioncontext:"+strings.ToLower(pairs[i])] = append(m["kms:encryptioncontext:"+strings.ToLower(pairs[i])], pairs[i+1])
		keys = append(keys, pairs[i])
	}
	if len(keys) > 0 {
		m["kms:encryptioncontextkeys"] = keys
	}
	return m
}

func TestEvaluate(t *testing.T) {
	docs := map[string]*Document{}
	for name, src := range map[string]string{"default": defaultPolicy, "roles": rolesPolicy} {
		d, err := Parse([]byte(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs[name] = d
	}
	type req = Request
	for _, tc := range []struct {
		name   string
		doc    string
		r      req
		expect Decision
	}{
		{"default: root may do anything", "default", req{Principals: []string{alice, root}, Action: "kms:ScheduleKeyDeletion", Resource: keyARN}, Allowed},
		{"default: a user is not root", "default", req{Principals: []string{alice}, Action: "kms:Decrypt", Resource: keyARN}, ImplicitDeny},
		{"default: action case", "default", req{Principals: []string{root}, Action: "KMS:DECRYPT", Resource: keyARN}, Allowed},
		{"admin may manage", "roles", req{Principals: []string{alice}, Action: "kms:DisableKey", Resource: keyARN}, Allowed},
		{"admin may put policy", "roles", req{Principals: []string{alice}, Action: "kms:PutKeyPolicy", Resource: keyARN}, Allowed},
		{"admin may not use", "roles", req{Principals: []string{alice}, Action: "kms:Decrypt", Resource: keyARN, Context: ec("s3seal:bucket", "photos")}, ImplicitDeny},
		{"admin may not generate", "roles", req{Principals: []string{alice}, Action: "kms:GenerateDataKey", Resource: keyARN}, ImplicitDeny},
		{"user may use for photos", "roles", req{Principals: []string{bob}, Action: "kms:Decrypt", Resource: keyARN, Context: ec("s3seal:bucket", "photos")}, Allowed},
		{"context key name is case insensitive", "roles", req{Principals: []string{bob}, Action: "kms:Decrypt", Resource: keyARN, Context: ec("S3SEAL:Bucket", "photos")}, Allowed},
		{"context value is case sensitive", "roles", req{Principals: []string{bob}, Action: "kms:Decrypt", Resource: keyARN, Context: ec("s3seal:bucket", "Photos")}, ImplicitDeny},
		{"user may not use for backups", "roles", req{Principals: []string{bob}, Action: "kms:Decrypt", Resource: keyARN, Context: ec("s3seal:bucket", "backups")}, ImplicitDeny},
		{"user without context", "roles", req{Principals: []string{bob}, Action: "kms:GenerateDataKey", Resource: keyARN}, ImplicitDeny},
		{"user may reencrypt by wildcard", "roles", req{Principals: []string{bob}, Action: "kms:ReEncryptFrom", Resource: keyARN, Context: ec("s3seal:bucket", "photos")}, Allowed},
		{"user may describe without context", "roles", req{Principals: []string{bob}, Action: "kms:DescribeKey", Resource: keyARN}, Allowed},
		{"user may not manage", "roles", req{Principals: []string{bob}, Action: "kms:DisableKey", Resource: keyARN}, ImplicitDeny},
		{"explicit deny beats root", "roles", req{Principals: []string{root}, Action: "kms:ScheduleKeyDeletion", Resource: keyARN, Context: map[string][]string{"aws:username": {"admin"}}}, ExplicitDeny},
		{"explicit deny beats allow", "roles", req{Principals: []string{alice}, Action: "kms:ScheduleKeyDeletion", Resource: keyARN}, ExplicitDeny},
		{"deny condition not met", "roles", req{Principals: []string{root}, Action: "kms:ScheduleKeyDeletion", Resource: keyARN, Context: map[string][]string{"aws:username": {"root-operator"}}}, Allowed},
		{"stranger", "roles", req{Principals: []string{"arn:aws:iam::000000000000:user/eve"}, Action: "kms:Decrypt", Resource: keyARN, Context: ec("s3seal:bucket", "photos")}, ImplicitDeny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := docs[tc.doc].Evaluate(&tc.r); got != tc.expect {
				t.Fatalf("got %v, want %v", got, tc.expect)
			}
		})
	}
}

// TestConditions covers each operator, qualifier and IfExists against
// present, absent and multi-valued keys.
func TestConditions(t *testing.T) {
	for _, tc := range []struct {
		name string
		cond string // the Condition block
		ctx  map[string][]string
		want bool
	}{
		{"StringEquals match", `{"StringEquals":{"k":"v"}}`, map[string][]string{"k": {"v"}}, true},
		{"StringEquals one of values", `{"StringEquals":{"k":["a","v"]}}`, map[string][]string{"k": {"v"}}, true},
		{"StringEquals mismatch", `{"StringEquals":{"k":"v"}}`, map[string][]string{"k": {"V"}}, false},
		{"StringEquals absent", `{"StringEquals":{"k":"v"}}`, nil, false},
		{"StringEqualsIfExists absent", `{"StringEqualsIfExists":{"k":"v"}}`, nil, true},
		{"StringEqualsIfExists mismatch", `{"StringEqualsIfExists":{"k":"v"}}`, map[string][]string{"k": {"x"}}, false},
		{"StringNotEquals absent", `{"StringNotEquals":{"k":"v"}}`, nil, true},
		{"StringNotEquals match", `{"StringNotEquals":{"k":"v"}}`, map[string][]string{"k": {"v"}}, false},
		{"StringNotEquals other", `{"StringNotEquals":{"k":["v","w"]}}`, map[string][]string{"k": {"x"}}, true},
		{"StringEqualsIgnoreCase", `{"StringEqualsIgnoreCase":{"k":"Photos"}}`, map[string][]string{"k": {"PHOTOS"}}, true},
		{"StringNotEqualsIgnoreCase", `{"StringNotEqualsIgnoreCase":{"k":"Photos"}}`, map[string][]string{"k": {"PHOTOS"}}, false},
		{"StringLike star", `{"StringLike":{"k":"photo*"}}`, map[string][]string{"k": {"photos-2026"}}, true},
		{"StringLike question", `{"StringLike":{"k":"ph?to"}}`, map[string][]string{"k": {"photo"}}, true},
		{"StringLike no match", `{"StringLike":{"k":"photo*"}}`, map[string][]string{"k": {"backups"}}, false},
		{"StringNotLike", `{"StringNotLike":{"k":"photo*"}}`, map[string][]string{"k": {"backups"}}, true},
		{"key name case", `{"StringEquals":{"KMS:EncryptionContext:Bucket":"b"}}`, map[string][]string{"kms:encryptioncontext:bucket": {"b"}}, true},
		{"two keys AND", `{"StringEquals":{"a":"1","b":"2"}}`, map[string][]string{"a": {"1"}, "b": {"3"}}, false},
		{"two operators AND", `{"StringEquals":{"a":"1"},"StringLike":{"b":"2*"}}`, map[string][]string{"a": {"1"}, "b": {"22"}}, true},
		{"multi unqualified any", `{"StringEquals":{"kms:EncryptionContextKeys":"s3seal:bucket"}}`, map[string][]string{"kms:encryptioncontextkeys": {"x", "s3seal:bucket"}}, true},
		{"multi unqualified negated none", `{"StringNotEquals":{"kms:EncryptionContextKeys":"secret"}}`, map[string][]string{"kms:encryptioncontextkeys": {"x", "secret"}}, false},
		{"ForAllValues subset", `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["s3seal:bucket","app"]}}`, map[string][]string{"kms:encryptioncontextkeys": {"s3seal:bucket"}}, true},
		{"ForAllValues extra key", `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["s3seal:bucket"]}}`, map[string][]string{"kms:encryptioncontextkeys": {"s3seal:bucket", "x"}}, false},
		{"ForAllValues absent", `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["s3seal:bucket"]}}`, nil, true},
		{"ForAnyValue present", `{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"s3seal:bucket"}}`, map[string][]string{"kms:encryptioncontextkeys": {"s3seal:bucket", "x"}}, true},
		{"ForAnyValue absent", `{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"s3seal:bucket"}}`, nil, false},
		{"ForAnyValue negated", `{"ForAnyValue:StringNotEquals":{"k":"a"}}`, map[string][]string{"k": {"a", "b"}}, true},
		{"ForAllValues negated", `{"ForAllValues:StringNotLike":{"k":"secret*"}}`, map[string][]string{"k": {"a", "secret-x"}}, false},
		{"qualifier case", `{"forallvalues:stringequals":{"k":"a"}}`, map[string][]string{"k": {"a"}}, true},
		{"Null true absent", `{"Null":{"k":"true"}}`, nil, true},
		{"Null true present", `{"Null":{"k":"true"}}`, map[string][]string{"k": {"x"}}, false},
		{"Null false present", `{"Null":{"k":false}}`, map[string][]string{"k": {"x"}}, true},
		{"Null empty list is absent", `{"Null":{"k":"true"}}`, map[string][]string{"k": {}}, true},
		{"Bool", `{"Bool":{"aws:SecureTransport":true}}`, map[string][]string{"aws:securetransport": {"true"}}, true},
		{"Bool false", `{"Bool":{"aws:SecureTransport":"true"}}`, map[string][]string{"aws:securetransport": {"false"}}, false},
		{"NumericLessThanEquals", `{"NumericLessThanEquals":{"kms:ScheduleKeyDeletionPendingWindowInDays":7}}`, map[string][]string{"kms:schedulekeydeletionpendingwindowindays": {"7"}}, true},
		{"NumericGreaterThan no", `{"NumericGreaterThan":{"n":"7"}}`, map[string][]string{"n": {"7"}}, false},
		{"NumericGreaterThanEquals", `{"NumericGreaterThanEquals":{"n":"7"}}`, map[string][]string{"n": {"7.0"}}, true},
		{"NumericLessThan", `{"NumericLessThan":{"n":"7"}}`, map[string][]string{"n": {"6.5"}}, true},
		{"NumericEquals", `{"NumericEquals":{"n":"365"}}`, map[string][]string{"n": {"365"}}, true},
		{"NumericNotEquals", `{"NumericNotEquals":{"n":"365"}}`, map[string][]string{"n": {"90"}}, true},
		{"Numeric bad request value", `{"NumericEquals":{"n":"1"}}`, map[string][]string{"n": {"one"}}, false},
		{"DateLessThan", `{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`, map[string][]string{"aws:currenttime": {"2026-12-01T00:00:00Z"}}, true},
		{"DateGreaterThan epoch", `{"DateGreaterThan":{"aws:CurrentTime":"1700000000"}}`, map[string][]string{"aws:currenttime": {"2026-12-01T00:00:00Z"}}, true},
		{"DateEquals", `{"DateEquals":{"t":"2026-12-01"}}`, map[string][]string{"t": {"2026-12-01T00:00:00Z"}}, true},
		{"DateNotEquals", `{"DateNotEquals":{"t":"2026-12-01"}}`, map[string][]string{"t": {"2026-12-01T00:00:00Z"}}, false},
		{"DateGreaterThanEquals", `{"DateGreaterThanEquals":{"t":"2026-12-01"}}`, map[string][]string{"t": {"2026-12-01T00:00:00Z"}}, true},
		{"DateLessThanEquals", `{"DateLessThanEquals":{"t":"2026-12-01"}}`, map[string][]string{"t": {"2026-12-02T00:00:00Z"}}, false},
		{"IpAddress", `{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","127.0.0.1"]}}`, map[string][]string{"aws:sourceip": {"127.0.0.1"}}, true},
		{"IpAddress v6", `{"IpAddress":{"aws:SourceIp":"::1/128"}}`, map[string][]string{"aws:sourceip": {"::1"}}, true},
		{"NotIpAddress", `{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, map[string][]string{"aws:sourceip": {"10.1.2.3"}}, false},
		{"ArnLike", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::000000000000:user/*"}}`, map[string][]string{"aws:principalarn": {alice}}, true},
		{"ArnNotEquals", `{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::000000000000:user/alice"}}`, map[string][]string{"aws:principalarn": {bob}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":` + tc.cond + `}}`
			d, err := Parse([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			got := d.Evaluate(&Request{Principals: []string{alice}, Action: "kms:Decrypt", Resource: keyARN, Context: tc.ctx}) == Allowed
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPrincipalsActionsResources(t *testing.T) {
	for _, tc := range []struct {
		name, stmt string
		r          Request
		want       Decision
	}{
		{"star principal", `"Principal":"*","Action":"kms:Decrypt","Resource":"*"`, Request{Principals: []string{bob}}, Allowed},
		{"AWS star", `"Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"`, Request{Principals: []string{bob}}, Allowed},
		{"account id is root", `"Principal":{"AWS":"000000000000"},"Action":"kms:Decrypt","Resource":"*"`, Request{Principals: []string{bob, root}}, Allowed},
		{"account id is not a user", `"Principal":{"AWS":"000000000000"},"Action":"kms:Decrypt","Resource":"*"`, Request{Principals: []string{bob}}, ImplicitDeny},
		{"user list", `"Principal":{"AWS":["arn:aws:iam::000000000000:user/alice","arn:aws:iam::000000000000:user/bob"]},"Action":"kms:Decrypt","Resource":"*"`, Request{Principals: []string{bob}}, Allowed},
		{"service never matches", `"Principal":{"Service":"s3.amazonaws.com"},"Action":"kms:Decrypt","Resource":"*"`, Request{Principals: []string{bob}}, ImplicitDeny},
		{"NotPrincipal", `"NotPrincipal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"kms:Decrypt","Resource":"*"`, Request{Principals: []string{bob}}, Allowed},
		{"NotPrincipal excludes", `"NotPrincipal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"kms:Decrypt","Resource":"*"`, Request{Principals: []string{alice}}, ImplicitDeny},
		{"NotAction", `"Principal":"*","NotAction":"kms:Encrypt","Resource":"*"`, Request{Principals: []string{bob}}, Allowed},
		{"NotAction excludes", `"Principal":"*","NotAction":["kms:Encrypt","kms:Decrypt"],"Resource":"*"`, Request{Principals: []string{bob}}, ImplicitDeny},
		{"action wildcard", `"Principal":"*","Action":"kms:De*","Resource":"*"`, Request{Principals: []string{bob}}, Allowed},
		{"action star", `"Principal":"*","Action":"*","Resource":"*"`, Request{Principals: []string{bob}}, Allowed},
		{"other service", `"Principal":"*","Action":"s3:GetObject","Resource":"*"`, Request{Principals: []string{bob}}, ImplicitDeny},
		{"resource arn", `"Principal":"*","Action":"kms:Decrypt","Resource":"` + keyARN + `"`, Request{Principals: []string{bob}}, Allowed},
		{"resource pattern", `"Principal":"*","Action":"kms:Decrypt","Resource":"arn:aws:kms:*:000000000000:key/*"`, Request{Principals: []string{bob}}, Allowed},
		{"other resource", `"Principal":"*","Action":"kms:Decrypt","Resource":"arn:aws:kms:local:000000000000:key/other"`, Request{Principals: []string{bob}}, ImplicitDeny},
		{"NotResource", `"Principal":"*","Action":"kms:Decrypt","NotResource":"arn:aws:kms:local:000000000000:key/other"`, Request{Principals: []string{bob}}, Allowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` + tc.stmt + `}]}`))
			if err != nil {
				t.Fatal(err)
			}
			tc.r.Action, tc.r.Resource = "kms:Decrypt", keyARN
			if got := d.Evaluate(&tc.r); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"", "", true}, {"", "a", false}, {"a", "a", true}, {"a", "b", false},
		{"a*", "abc", true}, {"*c", "abc", true}, {"a*c", "abbbc", true}, {"a*c", "abcd", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*a*b*c*", "xaxbxcx", true}, {"**", "x", true},
		{"kms:generatedatakey*", "kms:generatedatakeywithoutplaintext", true},
		{strings.Repeat("*a", 20) + "b", strings.Repeat("a", 60), false},
	} {
		if got := Match(tc.p, tc.s); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

// TestCanonicalRoundTrip: the canonical form parses to a document that
// renders the same.
func TestCanonicalRoundTrip(t *testing.T) {
	for _, src := range []string{defaultPolicy, rolesPolicy} {
		d, err := Parse([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		b1, _ := json.Marshal(d)
		d2, err := Parse(b1)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, b1)
		}
		b2, _ := json.Marshal(d2)
		if string(b1) != string(b2) {
			t.Fatalf("canonical form changed:\n%s\n%s", b1, b2)
		}
	}
}
