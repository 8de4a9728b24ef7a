package migrate

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/internal/objstore"
)

func TestShard(t *testing.T) {
	for _, bad := range []string{"", "1", "4/4", "-1/4", "a/b", "0/0", "1/0"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
	const n = 4
	counts := make([]int, n)
	for i := range 10000 {
		key := fmt.Sprintf("photos/%d.jpg", i)
		owners := 0
		for k := range n {
			sh, err := ParseShard(fmt.Sprintf("%d/%d", k, n))
			if err != nil {
				t.Fatal(err)
			}
			if sh.Keeps(key) {
				owners++
				counts[k]++
			}
		}
		if owners != 1 {
			t.Fatalf("%s kept by %d shards", key, owners)
		}
	}
	for k, c := range counts {
		if c < 2300 || c > 2700 {
			t.Errorf("shard %d/%d has %d of 10000 keys", k, n, c)
		}
	}
	// The hash is part of the interface (shards of one run may be built
	// apart): pin it.
	// FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c: 0 modulo 4, 1 modulo 3.
	if !(Shard{K: 0, N: 4}).Keeps("a") || !(Shard{K: 1, N: 3}).Keeps("a") || !(Shard{}).Keeps("a") {
		t.Error("shard of \"a\" changed")
	}
}

func TestKeyList(t *testing.T) {
	got, err := KeyList{R: strings.NewReader("a\r\n\n# comment\nb/c d\n#x\ne")}.Objects(context.Background())
	if err != nil || fmt.Sprint(got) != "[{a 0} {b/c d 0} {e 0}]" {
		t.Errorf("%v %v", got, err)
	}
}

func TestInventory(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprint(zw, "\"b\",\"a+b%2Fc\",\"null\",\"true\",\"false\",\"12\"\n\"b\",\"old\",\"v1\",\"false\",\"false\",\"3\"\n\"b\",\"gone\",\"v2\",\"true\",\"true\",\"0\"\n\"other\",\"x\",\"v\",\"true\",\"false\",\"1\"\n")
	zw.Close()
	files := map[string][]byte{"data/1.csv.gz": gz.Bytes(), "data/2.csv": []byte("b,plain,null,true,false,5\n")}
	inv := Inventory{Bucket: "b", Open: func(_ context.Context, key string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(files[key])), nil
	}, Manifest: []byte(`{"sourceBucket": "b", "fileFormat": "CSV",
		"fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size",
		"files": [{"key": "data/1.csv.gz"}, {"key": "data/2.csv"}]}`)}
	got, err := inv.Objects(context.Background())
	if err != nil || fmt.Sprint(got) != "[{a b/c 12} {plain 5}]" {
		t.Errorf("%v %v", got, err)
	}
	for _, m := range []string{`{"fileFormat": "ORC", "fileSchema": "Bucket, Key"}`, `{"fileFormat": "CSV", "fileSchema": "Bucket, Size"}`,
		`{"sourceBucket": "a", "fileFormat": "CSV", "fileSchema": "Key"}`, `not json`} {
		inv.Manifest = []byte(m)
		if _, err := inv.Objects(context.Background()); err == nil {
			t.Errorf("manifest %s accepted", m)
		}
	}
}

func TestCopySource(t *testing.T) {
	for _, tc := range []struct {
		key, version, want string
	}{
		{"a/b c.txt", "", "bkt/a/b%20c.txt"},
		{"x+y/%2F/ü", "", "bkt/x%2By/%252F/%C3%BC"},
		{"k", "v 1", "bkt/k?versionId=v+1"},
	} {
		if got := copySource(&objstore.Object{Bucket: "bkt", Key: tc.key, VersionID: tc.version}); got != tc.want {
			t.Errorf("copySource(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// FuzzInventory feeds arbitrary manifests and CSV files to the inventory
// reader: it may refuse them, never panic, and it returns at most one
// object per CSV row of each file the manifest lists.
func FuzzInventory(f *testing.F) {
	f.Add([]byte(`{"sourceBucket":"src","fileFormat":"CSV","fileSchema":"Bucket, Key, Size, IsLatest","files":[{"key":"data/a.csv"}]}`),
		[]byte("src,a+b%2Fc,10,true\nsrc,old,1,false\nother,x,1,true\n"))
	f.Add([]byte(`{"fileFormat":"csv","fileSchema":"Key","files":[{"key":"f"},{"key":"g"}]}`), []byte("\"quoted,key\"\n"))
	f.Fuzz(func(t *testing.T, manifest, data []byte) {
		opened := 0
		inv := Inventory{Manifest: manifest, Bucket: "src", Open: func(context.Context, string) (io.ReadCloser, error) {
			opened++
			return io.NopCloser(bytes.NewReader(data)), nil
		}}
		got, err := inv.Objects(context.Background())
		if err != nil || opened == 0 {
			return
		}
		cr := csv.NewReader(bytes.NewReader(data))
		cr.FieldsPerRecord = -1
		rows, err := cr.ReadAll()
		if err != nil {
			t.Fatalf("the reader accepted a CSV file that does not parse: %v", err)
		}
		if len(got) > opened*len(rows) {
			t.Fatalf("%d objects from %d files of %d rows", len(got), opened, len(rows))
		}
	})
}
