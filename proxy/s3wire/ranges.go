package s3wire

import (
	"fmt"
	"strconv"
	"strings"
)

// ByteRange is a parsed Range header. S3 honours a single range only;
// anything it cannot parse it ignores and serves the whole object.
type ByteRange struct {
	Start, End int64 // End < 0: to the end of the object
	Suffix     int64 // the last Suffix bytes, if SuffixSet
	SuffixSet  bool
	Raw        string // the header as sent, for InvalidRange
}

// ParseRange parses "bytes=a-b", "bytes=a-" or "bytes=-n"; ok is false
// for anything S3 would ignore.
func ParseRange(v string) (br *ByteRange, ok bool) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return nil, false
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return nil, false
	}
	r := &ByteRange{Raw: v, End: -1}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return nil, false
		}
		r.Suffix, r.SuffixSet = n, true
		return r, true
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return nil, false
	}
	r.Start = start
	if b != "" {
		end, err := strconv.ParseInt(b, 10, 64)
		if err != nil || end < start {
			return nil, false
		}
		r.End = end
	}
	return r, true
}

// Resolve turns the range into [off, off+n) for an object of size, or
// reports it unsatisfiable.
func (br *ByteRange) Resolve(size int64) (off, n int64, ok bool) {
	if br.SuffixSet {
		if br.Suffix == 0 || size == 0 {
			return 0, 0, false
		}
		n = min(br.Suffix, size)
		return size - n, n, true
	}
	if br.Start >= size {
		return 0, 0, false
	}
	end := size - 1
	if br.End >= 0 && br.End < end {
		end = br.End
	}
	return br.Start, end - br.Start + 1, true
}

// ParseContentRange reads "bytes first-last/total" from a 206 response.
func ParseContentRange(v string) (first, total int64, err error) {
	var last int64
	if _, err := fmt.Sscanf(v, "bytes %d-%d/%d", &first, &last, &total); err != nil {
		return 0, 0, fmt.Errorf("store sent Content-Range %q", v)
	}
	return first, total, nil
}

// ParsePartNumber reads a partNumber parameter: 1 to 10000.
func ParsePartNumber(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 10000 {
		return 0, InvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
	}
	return n, nil
}
