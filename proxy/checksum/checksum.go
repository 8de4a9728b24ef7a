// Package checksum is S3's additional checksums over an object's plaintext:
// the algorithms, the two checksum types of a multipart object (COMPOSITE,
// a checksum of the parts' checksums; FULL_OBJECT, the CRC of the whole
// object combined from the parts' CRCs) and how each is computed from the
// parts. It is pure: no I/O, no HTTP.
package checksum

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/minio/crc64nvme"
)

// Algorithm is an S3 checksum algorithm, named as x-amz-checksum-algorithm
// names it.
type Algorithm string

// The algorithms S3 accepts.
const (
	CRC32     Algorithm = "CRC32"
	CRC32C    Algorithm = "CRC32C"
	CRC64NVME Algorithm = "CRC64NVME"
	SHA1      Algorithm = "SHA1"
	SHA256    Algorithm = "SHA256"
)

// Algorithms lists every algorithm.
var Algorithms = []Algorithm{CRC32, CRC32C, CRC64NVME, SHA1, SHA256}

// ParseAlgorithm reads an x-amz-checksum-algorithm value (any case).
func ParseAlgorithm(s string) (Algorithm, bool) {
	a := Algorithm(strings.ToUpper(strings.TrimSpace(s)))
	return a, a.Size() > 0
}

// FromHeader gives the algorithm of an x-amz-checksum-* header name (any
// case).
func FromHeader(name string) (Algorithm, bool) {
	const prefix = "x-amz-checksum-"
	name = strings.ToLower(name)
	if !strings.HasPrefix(name, prefix) {
		return "", false
	}
	return ParseAlgorithm(name[len(prefix):])
}

// Header is the algorithm's x-amz-checksum-* header name, lower case.
func (a Algorithm) Header() string { return "x-amz-checksum-" + strings.ToLower(string(a)) }

// Element is the name of the algorithm's checksum element in S3's XML
// documents (ChecksumCRC32C, ...).
func (a Algorithm) Element() string { return "Checksum" + string(a) }

// Size is the length of the algorithm's digest in bytes; 0 for an unknown
// algorithm.
func (a Algorithm) Size() int {
	switch a {
	case CRC32, CRC32C:
		return 4
	case CRC64NVME:
		return 8
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	}
	return 0
}

// New returns a hash computing the algorithm's digest.
func (a Algorithm) New() hash.Hash {
	switch a {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(castagnoli)
	case CRC64NVME:
		return crc64nvme.New()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Type is how a multipart object's checksum is made from its parts'.
type Type string

const (
	// Composite is the checksum of the concatenated part checksums,
	// written with a "-N" suffix (N parts).
	Composite Type = "COMPOSITE"
	// FullObject is the checksum of the whole object; for a multipart
	// object, the parts' CRCs combined. Single objects have this type.
	FullObject Type = "FULL_OBJECT"
)

// ParseType reads an x-amz-checksum-type value (any case).
func ParseType(s string) (Type, bool) {
	t := Type(strings.ToUpper(strings.TrimSpace(s)))
	return t, t == Composite || t == FullObject
}

// DefaultType is the type S3 gives a multipart upload that names algorithm
// a and no type: FULL_OBJECT for CRC64NVME (it has no composite form),
// COMPOSITE for the others.
func DefaultType(a Algorithm) Type {
	if a == CRC64NVME {
		return FullObject
	}
	return Composite
}

// Allowed reports whether S3 accepts type t for algorithm a: only the CRCs
// combine into a full-object checksum, and CRC64NVME has no composite form.
func Allowed(a Algorithm, t Type) bool {
	switch t {
	case FullObject:
		return a == CRC32 || a == CRC32C || a == CRC64NVME
	case Composite:
		return a != CRC64NVME && a.Size() > 0
	}
	return false
}

// ErrInvalid is a checksum value that is not the base64 of a digest of its
// algorithm's size.
var ErrInvalid = errors.New("checksum: invalid value")

// Decode reads a base64 checksum value of algorithm a.
func Decode(a Algorithm, v string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || len(b) != a.Size() || len(b) == 0 {
		return nil, ErrInvalid
	}
	return b, nil
}

// SplitParts splits a composite value "<base64>-N" into the base64 and N;
// n is 0 when the value has no suffix.
func SplitParts(v string) (b64 string, n int) {
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return v, 0
	}
	n, err := strconv.Atoi(v[i+1:])
	if err != nil || n < 1 {
		return v, 0
	}
	return v[:i], n
}

// Part is one part's checksum and plaintext size.
type Part struct {
	Sum  []byte // raw digest
	Size int64
}

// Object computes a multipart object's checksum of type t from its parts'
// checksums, as S3 writes it: base64, with "-N" for COMPOSITE. Every part
// must carry a digest of a's size.
func Object(a Algorithm, t Type, parts []Part) (string, error) {
	if !Allowed(a, t) {
		return "", errors.New("checksum: type " + string(t) + " not allowed for " + string(a))
	}
	if len(parts) == 0 {
		return "", errors.New("checksum: no parts")
	}
	for _, p := range parts {
		if len(p.Sum) != a.Size() || p.Size < 0 {
			return "", ErrInvalid
		}
	}
	if t == Composite {
		h := a.New()
		for _, p := range parts {
			h.Write(p.Sum)
		}
		return base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts)), nil
	}
	return base64.StdEncoding.EncodeToString(Combine(a, parts)), nil
}
