package s3wire

import "testing"

func TestParseRange(t *testing.T) {
	const size = 100
	tests := []struct {
		h           string
		parsed      bool
		off, n      int64
		satisfiable bool
	}{
		{"bytes=0-9", true, 0, 10, true},
		{"bytes=90-", true, 90, 10, true},
		{"bytes=90-1000", true, 90, 10, true},
		{"bytes=-10", true, 90, 10, true},
		{"bytes=-1000", true, 0, 100, true},
		{"bytes=-0", true, 0, 0, false},
		{"bytes=100-", true, 0, 0, false},
		{"bytes=99-99", true, 99, 1, true},
		{"bytes=5-4", false, 0, 0, false},
		{"bytes=0-1,3-4", false, 0, 0, false},
		{"items=0-1", false, 0, 0, false},
		{"bytes=a-b", false, 0, 0, false},
	}
	for _, tt := range tests {
		br, ok := ParseRange(tt.h)
		if ok != tt.parsed {
			t.Errorf("%s: parsed %v, want %v", tt.h, ok, tt.parsed)
			continue
		}
		if !ok {
			continue
		}
		off, n, sat := br.Resolve(size)
		if sat != tt.satisfiable || sat && (off != tt.off || n != tt.n) {
			t.Errorf("%s: resolve = %d,%d,%v want %d,%d,%v", tt.h, off, n, sat, tt.off, tt.n, tt.satisfiable)
		}
	}
	if br, _ := ParseRange("bytes=0-"); func() bool { _, _, ok := br.Resolve(0); return ok }() {
		t.Error("a range on an empty object must be unsatisfiable")
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=9-", "bytes=1-0", "bytes=--1", "bytes=0-9223372036854775807"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		br, ok := ParseRange(h)
		if !ok {
			return
		}
		off, n, sat := br.Resolve(size)
		if sat && (off < 0 || n <= 0 || off+n > size) {
			t.Fatalf("%q on %d: off %d n %d", h, size, off, n)
		}
	})
}

func TestParseContentRange(t *testing.T) {
	first, total, err := ParseContentRange("bytes 65552-131103/200000")
	if err != nil || first != 65552 || total != 200000 {
		t.Errorf("got %d, %d, %v", first, total, err)
	}
	for _, bad := range []string{"", "bytes */100", "items 0-1/2", "bytes 0-1"} {
		if _, _, err := ParseContentRange(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParsePartNumber(t *testing.T) {
	for _, ok := range []string{"1", "10000", "42"} {
		if _, err := ParsePartNumber(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "0", "10001", "-1", "1.5", "x"} {
		if _, err := ParsePartNumber(bad); err == nil || AsError(err).Code != "InvalidArgument" {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
