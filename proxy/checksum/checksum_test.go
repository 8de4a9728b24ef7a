package checksum

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestCombine checks the combined CRC of split data against the CRC of the
// whole, for every CRC, with parts of sizes that cross byte, word and
// power-of-two boundaries, empty parts included.
func TestCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 300000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	splits := [][]int{
		{0}, {1}, {7, 0, 9}, {4096, 4096, 1}, {65536, 65535, 65537}, {1, 2, 3, 4, 5, 6, 7, 8},
		{0, 0, 100}, {100, 0, 0}, {131072, 1},
	}
	for _, a := range []Algorithm{CRC32, CRC32C, CRC64NVME} {
		for _, sizes := range splits {
			t.Run(string(a)+"/"+strconv.Itoa(len(sizes))+"parts", func(t *testing.T) {
				var parts []Part
				off := 0
				for _, n := range sizes {
					h := a.New()
					h.Write(data[off : off+n])
					parts = append(parts, Part{Sum: h.Sum(nil), Size: int64(n)})
					off += n
				}
				whole := a.New()
				whole.Write(data[:off])
				if got, want := Combine(a, parts), whole.Sum(nil); !bytes.Equal(got, want) {
					t.Errorf("sizes %v: combined %x, whole %x", sizes, got, want)
				}
			})
		}
	}
}

// TestCombineRandom: random splits of random lengths.
func TestCombineRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, a := range []Algorithm{CRC32, CRC32C, CRC64NVME} {
		for range 200 {
			n := rng.IntN(5000)
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			var parts []Part
			for off := 0; off < n || len(parts) == 0; {
				m := min(rng.IntN(700), n-off)
				h := a.New()
				h.Write(data[off : off+m])
				parts = append(parts, Part{Sum: h.Sum(nil), Size: int64(m)})
				off += m
			}
			whole := a.New()
			whole.Write(data)
			if got, want := Combine(a, parts), whole.Sum(nil); !bytes.Equal(got, want) {
				t.Fatalf("%s, %d bytes in %d parts: combined %x, whole %x", a, n, len(parts), got, want)
			}
		}
	}
}

// TestObject checks both types against values computed independently: the
// composite from AWS's documented construction, the full-object CRC of
// "hello world" split in two against the CRC of the whole.
func TestObject(t *testing.T) {
	p1, p2 := []byte("hello "), []byte("world")
	for _, a := range Algorithms {
		sum := func(b []byte) []byte { h := a.New(); h.Write(b); return h.Sum(nil) }
		parts := []Part{{Sum: sum(p1), Size: int64(len(p1))}, {Sum: sum(p2), Size: int64(len(p2))}}
		if Allowed(a, Composite) {
			got, err := Object(a, Composite, parts)
			if err != nil {
				t.Fatal(err)
			}
			want := base64.StdEncoding.EncodeToString(sum(append(sum(p1), sum(p2)...))) + "-2"
			if got != want {
				t.Errorf("%s composite: %s, want %s", a, got, want)
			}
		}
		if Allowed(a, FullObject) {
			got, err := Object(a, FullObject, parts)
			if err != nil {
				t.Fatal(err)
			}
			if want := base64.StdEncoding.EncodeToString(sum([]byte("hello world"))); got != want {
				t.Errorf("%s full object: %s, want %s", a, got, want)
			}
		}
	}
	if _, err := Object(SHA256, FullObject, []Part{{Sum: make([]byte, 32)}}); err == nil {
		t.Error("SHA256 FULL_OBJECT accepted")
	}
	if _, err := Object(CRC64NVME, Composite, []Part{{Sum: make([]byte, 8)}}); err == nil {
		t.Error("CRC64NVME COMPOSITE accepted")
	}
	if _, err := Object(CRC32, Composite, []Part{{Sum: make([]byte, 8)}}); err == nil {
		t.Error("a CRC32 part sum of 8 bytes accepted")
	}
	if _, err := Object(CRC32, Composite, nil); err == nil {
		t.Error("no parts accepted")
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Algorithm
		ok   bool
	}{{"crc32c", CRC32C, true}, {" SHA256 ", SHA256, true}, {"Crc64Nvme", CRC64NVME, true}, {"md5", "", false}, {"", "", false}} {
		got, ok := ParseAlgorithm(tc.in)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ParseAlgorithm(%q) = %q, %v", tc.in, got, ok)
		}
	}
	if a, ok := FromHeader("X-Amz-Checksum-Crc64nvme"); !ok || a != CRC64NVME || a.Header() != "x-amz-checksum-crc64nvme" {
		t.Errorf("FromHeader: %q %v", a, ok)
	}
	if _, ok := FromHeader("x-amz-checksum-type"); ok {
		t.Error("x-amz-checksum-type taken for an algorithm")
	}
	if typ, ok := ParseType("full_object"); !ok || typ != FullObject {
		t.Error("ParseType(full_object)")
	}
	if DefaultType(CRC64NVME) != FullObject || DefaultType(SHA1) != Composite {
		t.Error("DefaultType")
	}
	for _, tc := range []struct {
		in  string
		b64 string
		n   int
	}{{"abc=-3", "abc=", 3}, {"abc=", "abc=", 0}, {"abc=-x", "abc=-x", 0}, {"abc=-0", "abc=-0", 0}} {
		if b, n := SplitParts(tc.in); b != tc.b64 || n != tc.n {
			t.Errorf("SplitParts(%q) = %q, %d", tc.in, b, n)
		}
	}
	if _, err := Decode(CRC32, "AAAAAAAAAAA="); err == nil {
		t.Error("8 bytes decoded as a CRC32")
	}
	if _, err := Decode(CRC32, "AAAAAA=="); err != nil {
		t.Error(err)
	}
}
