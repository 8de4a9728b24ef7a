package s3wire

import "testing"

func TestUploadIDCodec(t *testing.T) {
	u := []byte("0123456789abcdef")
	for _, tc := range []struct{ store, key string }{
		{"abc", ""}, {"a~b~c", "alias/x"}, {"2~/+=", "arn:aws:kms:eu-west-1:111122223333:key/k"},
	} {
		id := ClientUploadID(tc.store, u, tc.key)
		ref := ParseUploadID(id)
		if ref.StoreID != tc.store || string(ref.Upload) != string(u) || ref.KeyID != tc.key || ref.Client != id {
			t.Errorf("%q: parsed %+v", id, ref)
		}
	}
	// Write-only uploads: the pending header's object key too.
	pk := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct{ store, key string }{{"abc", ""}, {"a~b~c", "alias/x"}} {
		id := ClientUploadIDPending(tc.store, u, tc.key, pk)
		ref := ParseUploadID(id)
		if ref.StoreID != tc.store || string(ref.Upload) != string(u) || ref.KeyID != tc.key || string(ref.PendingKey) != string(pk) || ref.Client != id {
			t.Errorf("%q: parsed %+v", id, ref)
		}
		if ParseUploadID(ClientUploadID(tc.store, u, tc.key)).PendingKey != nil {
			t.Errorf("an s3seal2 id has a pending key")
		}
	}
	for _, foreign := range []string{"plain-store-id", "s3seal1~YQ~store", "s3seal2~short~~store", "s3seal2~" + "MDEyMzQ1Njc4OWFiY2RlZg" + "~store",
		"s3seal3a~MDEyMzQ1Njc4OWFiY2RlZg~~c2hvcnQ~store", "s3seal3a~MDEyMzQ1Njc4OWFiY2RlZg~~store"} {
		if ref := ParseUploadID(foreign); ref.Upload != nil || ref.PendingKey != nil || ref.StoreID != foreign {
			t.Errorf("foreign id %q parsed as %+v", foreign, ref)
		}
	}
}

// FuzzParseUploadID: any id parses; an s3seal id names a whole upload
// identity and survives re-encoding, any other id is the store's as is.
func FuzzParseUploadID(f *testing.F) {
	f.Add(ClientUploadID("store~id", []byte("0123456789abcdef"), "alias/k"))
	f.Add(ClientUploadID("", []byte("0123456789abcdef"), ""))
	f.Add(ClientUploadIDPending("store~id", []byte("0123456789abcdef"), "alias/k", []byte("0123456789abcdef0123456789abcdef")))
	for _, s := range []string{"", "plain", "s3seal2~", "s3seal2~~~", "s3seal2~MDEyMzQ1Njc4OWFiY2RlZg~~x", "s3seal1~YQ~store"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		ref := ParseUploadID(id)
		if ref.Client != id {
			t.Fatalf("%q: client id %q", id, ref.Client)
		}
		if ref.Upload == nil {
			if ref.StoreID != id || ref.KeyID != "" || ref.Mapped() {
				t.Fatalf("foreign id %q parsed as %+v", id, ref)
			}
			return
		}
		if len(ref.Upload) != 16 || !ref.Mapped() || ref.PendingKey != nil && len(ref.PendingKey) != 32 {
			t.Fatalf("%q parsed as %+v", id, ref)
		}
		enc := ClientUploadID(ref.StoreID, ref.Upload, ref.KeyID)
		if ref.PendingKey != nil {
			enc = ClientUploadIDPending(ref.StoreID, ref.Upload, ref.KeyID, ref.PendingKey)
		}
		again := ParseUploadID(enc)
		if again.StoreID != ref.StoreID || string(again.Upload) != string(ref.Upload) || again.KeyID != ref.KeyID || string(again.PendingKey) != string(ref.PendingKey) {
			t.Fatalf("%q: %+v re-encoded as %+v", id, ref, again)
		}
	})
}
