package s3wire

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		method, uri string
		copySrc     bool
		want        Op
	}{
		{"GET", "/", false, ListBuckets},
		{"PUT", "/", false, Unsupported},
		{"GET", "/b", false, ListObjects},
		{"GET", "/b/?list-type=2&prefix=a", false, ListObjects},
		{"GET", "/b?location", false, BucketRead},
		{"GET", "/b?versions", false, ListVersions},
		{"GET", "/b?uploads", false, ListMultipartUploads},
		{"HEAD", "/b", false, BucketRead},
		{"PUT", "/b", false, BucketWrite},
		{"PUT", "/b?versioning", false, BucketWrite},
		{"PUT", "/b?select", false, Unsupported},
		{"DELETE", "/b", false, BucketWrite},
		{"POST", "/b?delete", false, DeleteObjects},
		{"POST", "/b", false, PostObject}, // browser form upload
		{"POST", "/b?foo", false, Unsupported},
		{"PUT", "/b/k", false, PutObject},
		{"PUT", "/b/k?x-id=PutObject", false, PutObject},
		{"PUT", "/b/k", true, CopyObject},
		{"PUT", "/b/k?tagging", false, ObjectWrite},
		{"PUT", "/b/k?partNumber=1&uploadId=x", false, UploadPart},
		{"PUT", "/b/k?partNumber=1&uploadId=x", true, UploadPartCopy},
		{"PUT", "/b/k?unknown=1", false, Unsupported},
		{"GET", "/b/k", false, GetObject},
		{"GET", "/b/k?versionId=3", false, GetObject},
		{"GET", "/b/k?tagging", false, ObjectRead},
		{"GET", "/b/k?uploadId=x", false, ListParts},
		{"GET", "/b/k?attributes", false, GetAttributes},
		{"POST", "/b/k?select&select-type=2", false, Unsupported},
		{"HEAD", "/b/k", false, HeadObject},
		{"DELETE", "/b/k", false, DeleteObject},
		{"DELETE", "/b/k?uploadId=x", false, AbortMultipart},
		{"POST", "/b/k?uploads", false, CreateMultipart},
		{"POST", "/b/k?uploadId=x", false, CompleteMultipart},
		{"POST", "/b/k", false, Unsupported},
		{"PATCH", "/b/k", false, Unsupported},
		{"GET", "/b/a//b/../c%2Fd", false, GetObject},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.uri, func(t *testing.T) {
			tg, err := ParseTarget(tt.uri)
			if err != nil {
				t.Fatal(err)
			}
			if got := Classify(tt.method, tg, tt.copySrc); got != tt.want {
				t.Errorf("classify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseTargetKeepsRawPath(t *testing.T) {
	tg, err := ParseTarget("/bucket/a//b/./c%2Fd%20e+f?versionId=1")
	if err != nil {
		t.Fatal(err)
	}
	if tg.Bucket != "bucket" || tg.Key != "a//b/./c/d e+f" || tg.RawPath != "/bucket/a//b/./c%2Fd%20e+f" {
		t.Errorf("got bucket %q key %q raw %q", tg.Bucket, tg.Key, tg.RawPath)
	}
}

func TestVirtualHosted(t *testing.T) {
	tg, err := VirtualHosted("bucket", "/a%2Fb?versionId=1")
	if err != nil {
		t.Fatal(err)
	}
	if tg.Bucket != "bucket" || tg.Key != "a/b" || tg.RawPath != "/bucket/a%2Fb" || tg.SignedPath != "/a%2Fb" || tg.RawQuery != "versionId=1" {
		t.Errorf("got %+v", tg)
	}
	if tg, err := VirtualHosted("bucket", "/"); err != nil || tg.RawPath != "/bucket" || tg.Key != "" || tg.SignedPath != "/" {
		t.Errorf("bucket request: %+v, %v", tg, err)
	}
	if _, err := VirtualHosted("bucket", "no-slash"); err == nil {
		t.Error("a URI without a leading slash was accepted")
	}
}

// TestSpecTable: every operation has a row, and only the operations that
// encrypt, or that carry a configuration document, do anything with a
// request body.
func TestSpecTable(t *testing.T) {
	for o := Unsupported; o <= GetAttributes; o++ {
		spec := o.Spec()
		if spec.Name == "" {
			t.Errorf("op %d has no row", o)
		}
		switch spec.Body {
		case BodyObject:
			if o != PutObject && o != UploadPart {
				t.Errorf("%v encrypts a body", o)
			}
		case BodyConfig:
			switch o {
			case BucketWrite, DeleteObjects, DeleteObject, ObjectWrite, CompleteMultipart:
			default:
				t.Errorf("%v forwards a configuration body", o)
			}
		case BodyRefused:
			if o != Unsupported {
				t.Errorf("%v is refused", o)
			}
		}
		if spec.Anonymous && spec.Body != BodyNone {
			t.Errorf("%v: anonymous callers may send it a body", o)
		}
	}
	if (Op(99)).Spec().Body != BodyRefused {
		t.Error("an operation missing from the table is not refused")
	}
}

// TestUnknownWithBodyRefused: a request that could carry object data the
// proxy does not know how to encrypt classifies to an operation whose Spec
// refuses it (NotImplemented), never to one that forwards its body.
func TestUnknownWithBodyRefused(t *testing.T) {
	for _, tt := range []struct {
		method, uri string
		copySrc     bool
	}{
		{"POST", "/b?uploads", false},                // not a bucket operation
		{"POST", "/b/k", false},                      // no operation named
		{"POST", "/b/k?select&select-type=2", false}, // SelectObjectContent
		{"POST", "/b/k?restore", false},
		{"PUT", "/b/k?unknown=1", false},
		{"PUT", "/b?select", false},
		{"PUT", "/b?unknown", false},
		{"PUT", "/", false},
		{"POST", "/", false},
		{"PATCH", "/b/k", false},
		{"PATCH", "/b", false},
		{"GET", "/b/k?select", false},
	} {
		tg, err := ParseTarget(tt.uri)
		if err != nil {
			t.Fatal(err)
		}
		o := Classify(tt.method, tg, tt.copySrc)
		if o.Spec().Body != BodyRefused {
			t.Errorf("%s %s (copy source %v) is %v, body %d: not refused", tt.method, tt.uri, tt.copySrc, o, o.Spec().Body)
		}
	}
}

// FuzzClassify: whatever the request, a body is encrypted only for the
// operations that encrypt, and forwarded only as configuration of an
// operation whose query names what it configures.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"/", "/b", "/b/k", "/b/k?tagging", "/b?delete", "/b/k?uploadId=x&partNumber=1",
		"/b/k?X-Amz-Signature=0&x-amz-meta-a=b", "/b/k?uploads", "/b?acl&foo", "/b/k?partNumber=1", "//k?x-id=1"} {
		for _, m := range []string{"GET", "PUT", "POST", "DELETE", "HEAD"} {
			f.Add(m, s, false)
			f.Add(m, s, true)
		}
	}
	f.Fuzz(func(t *testing.T, method, uri string, copySrc bool) {
		tg, err := ParseTarget(uri)
		if err != nil {
			return
		}
		o := Classify(method, tg, copySrc)
		spec := o.Spec()
		if spec.Name == "" {
			t.Fatalf("%s %s: op %d has no row", method, uri, o)
		}
		switch spec.Body {
		case BodyObject:
			if o == PostObject {
				if method != "POST" || tg.Key != "" || len(tg.Query) != 0 {
					t.Fatalf("%s %s: %v is no form upload", method, uri, o)
				}
				break
			}
			if method != "PUT" || tg.Key == "" || copySrc {
				t.Fatalf("%s %s (copy %v): %v encrypts the body", method, uri, copySrc, o)
			}
		case BodyConfig:
			ok := false
			switch o {
			case BucketWrite:
				ok = len(tg.Query) == 0 || hasAny(tg.Query, bucketConfigSubresources)
			case ObjectWrite:
				ok = hasAny(tg.Query, objectConfigSubresources)
			case DeleteObjects:
				ok = tg.Query.Has("delete")
			case CompleteMultipart:
				ok = tg.Query.Has("uploadId")
			case DeleteObject:
				ok = method == "DELETE"
			}
			if !ok {
				t.Fatalf("%s %s: %v forwards the body as configuration", method, uri, o)
			}
		}
		if spec.Anonymous && method != "GET" && method != "HEAD" {
			t.Fatalf("%s %s: %v is open to anonymous readers", method, uri, o)
		}
	})
}

// TestAccessLevels: what each request needs, from the one table. Bucket
// configuration of any kind is administration; anonymous callers read
// objects and listings, never a bucket's configuration.
func TestAccessLevels(t *testing.T) {
	for _, tt := range []struct {
		method, uri string
		access      Access
		anonymous   bool
	}{
		{"GET", "/b/k", AccessRead, true},
		{"HEAD", "/b/k", AccessRead, true},
		{"GET", "/b?list-type=2&prefix=a", AccessRead, true},
		{"GET", "/b", AccessRead, true},
		{"GET", "/b?policy", AccessRead, false},
		{"GET", "/b?acl", AccessRead, false},
		{"GET", "/b?versioning", AccessRead, false},
		{"GET", "/b?location", AccessRead, false},
		{"HEAD", "/b", AccessRead, false},
		{"GET", "/b?versions", AccessRead, false},
		{"GET", "/b?uploads", AccessRead, false},
		{"PUT", "/b/k", AccessWrite, false},
		{"DELETE", "/b/k", AccessWrite, false},
		{"POST", "/b?delete", AccessWrite, false},
		{"POST", "/b/k?uploads", AccessWrite, false},
		{"PUT", "/b", AccessAdmin, false},
		{"DELETE", "/b", AccessAdmin, false},
		{"PUT", "/b?policy", AccessAdmin, false},
		{"DELETE", "/b?policy", AccessAdmin, false},
		{"PUT", "/b?acl", AccessAdmin, false},
		{"PUT", "/b?publicAccessBlock", AccessAdmin, false},
		{"PUT", "/b?replication", AccessAdmin, false},
		{"PUT", "/b?notification", AccessAdmin, false},
		{"PUT", "/b?inventory&id=x", AccessAdmin, false},
		{"PUT", "/b?lifecycle", AccessAdmin, false},
		{"PUT", "/b?versioning", AccessAdmin, false},
	} {
		tg, err := ParseTarget(tt.uri)
		if err != nil {
			t.Fatal(err)
		}
		spec := Classify(tt.method, tg, false).Spec()
		if spec.Access != tt.access || spec.Anonymous != tt.anonymous {
			t.Errorf("%s %s: access %v anonymous %v, want %v %v", tt.method, tt.uri, spec.Access, spec.Anonymous, tt.access, tt.anonymous)
		}
	}
}
