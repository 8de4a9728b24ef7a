package kms

import "testing"

func TestParseARN(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ARN
		ok   bool
	}{
		{"arn:aws:kms:eu-west-1:111122223333:key/1234abcd", ARN{"aws", "eu-west-1", "111122223333", "key/1234abcd"}, true},
		{"arn:aws-cn:kms:cn-north-1:111122223333:alias/x", ARN{"aws-cn", "cn-north-1", "111122223333", "alias/x"}, true},
		{"arn:aws:kms:us-east-1:111122223333:key/mrk-1:x", ARN{"aws", "us-east-1", "111122223333", "key/mrk-1:x"}, true},
		{"1234abcd-12ab-34cd-56ef-1234567890ab", ARN{}, false},
		{"alias/s3seal-default", ARN{}, false},
		{"arn:aws:s3:::bucket", ARN{}, false},
		{"arn:aws:kms::111122223333:key/x", ARN{}, false},
	} {
		got, ok := ParseARN(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseARN(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestMultiRegionID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", "mrk-1234abcd12ab34cd56ef1234567890ab"},
		{"mrk-1234abcd12ab34cd56ef1234567890ab", "mrk-1234abcd12ab34cd56ef1234567890ab"},
		{"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", ""},
		{"arn:aws:kms:us-east-1:111122223333:alias/mrk-looking", ""},
		{"alias/mrk-looking", ""},
		{"1234abcd-12ab-34cd-56ef-1234567890ab", ""},
		{"", ""},
	} {
		if got := MultiRegionID(tc.in); got != tc.want {
			t.Errorf("MultiRegionID(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if IsMultiRegion(tc.in) != (tc.want != "") {
			t.Errorf("IsMultiRegion(%q) = %v", tc.in, !(tc.want != ""))
		}
	}
}
