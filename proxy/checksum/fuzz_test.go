package checksum

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"testing"
)

// FuzzCombine cuts arbitrary data at two arbitrary points and checks that
// the parts' CRCs combine to the CRC of the whole, for every CRC, and that
// Object's COMPOSITE and FULL_OBJECT forms are well formed.
func FuzzCombine(f *testing.F) {
	f.Add([]byte("hello world"), uint16(5), uint16(6))
	f.Add([]byte{}, uint16(0), uint16(0))
	f.Add(bytes.Repeat([]byte{0xff}, 5000), uint16(4096), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, a, b uint16) {
		i := min(int(a), len(data))
		j := min(i+int(b), len(data))
		for _, alg := range []Algorithm{CRC32, CRC32C, CRC64NVME} {
			var parts []Part
			for _, p := range [][]byte{data[:i], data[i:j], data[j:]} {
				h := alg.New()
				h.Write(p)
				parts = append(parts, Part{Sum: h.Sum(nil), Size: int64(len(p))})
			}
			whole := alg.New()
			whole.Write(data)
			if got := Combine(alg, parts); !bytes.Equal(got, whole.Sum(nil)) {
				t.Fatalf("%s: cut at %d and %d: combined %x, whole %x", alg, i, j, got, whole.Sum(nil))
			}
			full, err := Object(alg, FullObject, parts)
			if err != nil || full != base64.StdEncoding.EncodeToString(whole.Sum(nil)) {
				t.Fatalf("%s FULL_OBJECT: %q, %v", alg, full, err)
			}
		}
	})
}

// FuzzValue: the parsers of client-supplied values never panic, and what
// they accept is consistent (a "-N" split off gives back the input, a
// decoded value has the algorithm's size).
func FuzzValue(f *testing.F) {
	f.Add("crc32c", "AAAAAA==-3", "COMPOSITE")
	f.Add("SHA256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "full_object")
	f.Add("x", "-", "")
	f.Fuzz(func(t *testing.T, alg, value, typ string) {
		a, ok := ParseAlgorithm(alg)
		if ok != (a.Size() > 0) {
			t.Fatalf("ParseAlgorithm(%q) = %q, %v", alg, a, ok)
		}
		if ok {
			if b, err := Decode(a, value); err == nil && len(b) != a.Size() {
				t.Fatalf("Decode(%s, %q): %d bytes", a, value, len(b))
			}
			if h, ok := FromHeader(a.Header()); !ok || h != a {
				t.Fatalf("FromHeader(%q) = %q", a.Header(), h)
			}
		}
		if b64, n := SplitParts(value); n > 0 && b64+"-"+strconv.Itoa(n) != value {
			// A leading zero or plus sign in N would not round-trip.
			if _, err := strconv.Atoi(value[len(b64)+1:]); err != nil {
				t.Fatalf("SplitParts(%q) = %q, %d", value, b64, n)
			}
		}
		if tp, ok := ParseType(typ); ok && tp != Composite && tp != FullObject {
			t.Fatalf("ParseType(%q) = %q", typ, tp)
		}
	})
}
