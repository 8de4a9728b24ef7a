package s3wire

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestSplitDeleteObjects(t *testing.T) {
	body := `<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>
  <Object><Key>keep/1</Key></Object>
  <Object><Key>&#46;&#46;/x</Key><VersionId>v1</VersionId></Object>
  <Object><Key>keep/2</Key><VersionId>v2</VersionId><ETag>"e"</ETag></Object>
  <Object><Key>a/..</Key></Object>
</Delete>`
	bad := func(k string) bool { return strings.Contains(k, "..") }
	kept, remaining, refused, err := SplitDeleteObjects([]byte(body), bad)
	if err != nil {
		t.Fatal(err)
	}
	if remaining != 2 || len(refused) != 2 || refused[0] != (DeleteRefusal{"../x", "v1"}) || refused[1].Key != "a/.." {
		t.Fatalf("remaining %d refused %+v", remaining, refused)
	}
	want := strings.Replace(strings.Replace(body, `<Object><Key>&#46;&#46;/x</Key><VersionId>v1</VersionId></Object>`, "", 1), `<Object><Key>a/..</Key></Object>`, "", 1)
	if string(kept) != want {
		t.Errorf("kept:\n%s\nwant:\n%s", kept, want)
	}
	// Nothing refused: the body is passed on as it is.
	if k, n, r, err := SplitDeleteObjects([]byte(body), func(string) bool { return false }); err != nil || n != 4 || r != nil || string(k) != body {
		t.Errorf("nothing refused: %d %v %v", n, r, err)
	}
	for _, malformed := range []string{"", "<Delete><Object><Key>a</Key></Delete>", "<Other/>", "<Delete><Object><Key>a</Key></Object>"} {
		if _, _, _, err := SplitDeleteObjects([]byte(malformed), bad); err != ErrMalformedXML {
			t.Errorf("%q: %v, want MalformedXML", malformed, err)
		}
	}
}

func TestAppendDeleteErrors(t *testing.T) {
	refused := []DeleteRefusal{{Key: "../<x>", VersionID: "v"}, {Key: "a/."}}
	store := []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<DeleteResult xmlns="` + NS + `"><Deleted><Key>k</Key></Deleted></DeleteResult>`)
	for _, doc := range [][]byte{store, nil} {
		out, err := AppendDeleteErrors(doc, refused, "XMinioInvalidObjectName", "bad")
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Deleted []struct{ Key string }
			Error   []struct{ Key, VersionId, Code string }
		}
		if err := xml.Unmarshal(out, &res); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if len(res.Error) != 2 || res.Error[0].Key != "../<x>" || res.Error[0].VersionId != "v" || res.Error[1].Code != "XMinioInvalidObjectName" {
			t.Errorf("errors %+v in %s", res.Error, out)
		}
		if (doc != nil) != (len(res.Deleted) == 1) {
			t.Errorf("deleted %+v in %s", res.Deleted, out)
		}
	}
	if _, err := AppendDeleteErrors([]byte("<Error/>"), refused, "c", "m"); err == nil {
		t.Error("a store answer that is not a DeleteResult was accepted")
	}
}

// FuzzSplitDeleteObjects: whatever the body, the split never panics, the
// kept document names exactly the remaining objects, and no refused key
// survives in it.
func FuzzSplitDeleteObjects(f *testing.F) {
	f.Add([]byte(`<Delete><Object><Key>a</Key></Object><Object><Key>../b</Key></Object></Delete>`))
	f.Add([]byte(`<Delete><Quiet>true</Quiet><Object><Key>./x</Key><VersionId>1</VersionId></Object></Delete>`))
	bad := func(k string) bool { return strings.Contains(k, ".") }
	f.Fuzz(func(t *testing.T, body []byte) {
		kept, remaining, refused, err := SplitDeleteObjects(body, bad)
		if err != nil {
			return
		}
		if len(refused) == 0 {
			return
		}
		k2, n2, r2, err := SplitDeleteObjects(kept, bad)
		if err != nil || n2 != remaining || len(r2) != 0 || string(k2) != string(kept) {
			t.Fatalf("re-split of kept %q: %d/%d refused %v err %v", kept, n2, remaining, r2, err)
		}
	})
}
