package policy

import (
	"encoding/json"
	"testing"
)

// FuzzParse feeds arbitrary documents to the parser. It must never panic;
// what it accepts must render canonically and parse again to a document
// that decides a set of requests the same way.
func FuzzParse(f *testing.F) {
	f.Add([]byte(defaultPolicy))
	f.Add([]byte(rolesPolicy))
	f.Add([]byte(`{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["000000000000"]},"NotAction":"kms:*","NotResource":"arn:aws:kms:*"}}`))
	f.Add([]byte(`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"ForAllValues:StringLikeIfExists":{"kms:EncryptionContextKeys":["a*",1,true]},"Null":{"x":"false"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"NumericLessThan":{"n":3.5},"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}}]}`))
	f.Add([]byte(`{"Version":"2008-10-17","Id":"x","Statement":[]}`))
	f.Add([]byte(`{"Statement":{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com","AWS":"*"},"Action":["kms:*"],"Resource":["*"]}}`))
	requests := []*Request{
		{Principals: []string{alice}, Action: "kms:Decrypt", Resource: keyARN},
		{Principals: []string{bob, root}, Action: "kms:ScheduleKeyDeletion", Resource: keyARN, Context: map[string][]string{"aws:username": {"bob"}}},
		{Principals: []string{alice}, Action: "kms:GenerateDataKey", Resource: keyARN, Context: ec("s3seal:bucket", "photos", "a", "b")},
		{Principals: []string{"*"}, Action: "s3:GetObject", Resource: "arn:aws:kms:x", Context: map[string][]string{"n": {"3"}, "aws:sourceip": {"10.1.1.1"}, "x": {"y"}}},
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Parse(doc)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		canon, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		d2, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form %s does not parse: %v", canon, err)
		}
		canon2, _ := json.Marshal(d2)
		if string(canon) != string(canon2) {
			t.Fatalf("canonical form not stable:\n%s\n%s", canon, canon2)
		}
		for _, r := range requests {
			if a, b := d.Evaluate(r), d2.Evaluate(r); a != b {
				t.Fatalf("request %+v: %v before, %v after the round trip (%s)", r, a, b, canon)
			}
		}
	})
}
