// Package envelope implements the s3seal on-store object format (versions 1,
// 2 and 3; it writes version 2, or version 3 when a flag is asked for): key
// derivation and sealing of the per-object key, the object header kept in
// the object's metadata and the metadata blob sealed in it (Meta), the segmented AES-256-GCM body stream, the
// self-describing parts of multipart objects bound to their upload, the
// manifest that binds the completed set of parts to the object, and the size
// and range arithmetic that maps plaintext positions to stored ones.
//
// FORMAT.md at the repository root specifies every byte; this package is the
// reference implementation and the golden files in testdata/envelope pin it.
//
// The package does no I/O of its own beyond the io.Reader streams it wraps,
// makes no KMS calls and knows nothing of HTTP: callers hand it plaintext
// data keys (DEKs, 32 bytes) together with their wrapped form (KeyInfo),
// which is stored beside the sealed object key so that a reader can ask the
// KMS to unwrap it.
//
// Key hierarchy (see FORMAT.md for the exact bytes):
//
//	DEK (from the KMS, cached, many objects)
//	 └─ seals OEK: random 256-bit object key, one per object (or part key, one per part)
//	     ├─ HKDF "s3seal/<v> body"   → body key   (segments)
//	     ├─ HKDF "s3seal/<v> meta"   → meta key   (sealed metadata blob)
//	     ├─ HKDF "s3seal/<v> commit" → commitment (stored, checked before any decryption)
//	     └─ HKDF "s3seal/<v> part header" → part header tag key (parts only)
//
// where <v> is the format version, so that no key derived for one version
// is ever valid in another.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Format constants. Changing any of them changes the format: bump Version.
const (
	// Version is the format version this package writes for objects and
	// parts without flags: version 2, so that nothing written without a
	// flag changes. A writer asked for any flag (Config.Flags) writes
	// FlagsVersion instead.
	Version = 2

	// FlagsVersion is the format version whose flags byte is meaningful
	// (FORMAT.md section 12): version 2 with flag bits.
	FlagsVersion = 3

	// MaxVersion is the newest format version this package reads. It reads
	// every version from MinVersion to MaxVersion.
	MaxVersion = 3

	// MinVersion is the oldest format version this package reads.
	MinVersion = 1

	// UploadIDSize is the size of the random upload identity that binds the
	// parts of a version 2 multipart object to their upload.
	UploadIDSize = 16

	// SegmentSize is the plaintext size of every segment of a single-layout
	// body but the last.
	SegmentSize = 64 << 10

	// TagSize is the size of an AES-GCM authentication tag.
	TagSize = 16

	// KeySize is the size of DEKs, object keys, part keys and derived keys.
	KeySize = 32

	// NonceSize is the size of an AES-GCM nonce.
	NonceSize = 12

	// CommitmentSize is the size of the stored key commitment.
	CommitmentSize = 32

	// PartHeaderSize is the size of the header region at the start of every
	// multipart part.
	PartHeaderSize = 4096

	// MaxPartSegments is the largest number of segments in one part.
	MaxPartSegments = 1024

	// PartOverhead is the exact number of bytes a part's ciphertext adds to
	// its plaintext: the part header plus one tag per possible segment.
	PartOverhead int64 = PartHeaderSize + TagSize*MaxPartSegments

	// MaxPartSize is the largest plaintext of one part (the S3 limit).
	MaxPartSize int64 = 5 << 30

	// MinPartNumber and MaxPartNumber bound S3 part numbers.
	MinPartNumber = 1
	MaxPartNumber = 10000

	// MetadataKey is the user-metadata key (as sent on the wire) that holds
	// the object header value.
	MetadataKey = "x-amz-meta-s3seal"

	// MaxHeaderValueLen is the largest header value NewObject and Reseal
	// produce: S3 caps user metadata at 2 KB, counted as the bytes of each
	// key ("s3seal") and value.
	MaxHeaderValueLen = 2048 - len("s3seal")
)

// Layout says how an object's body is stored.
type Layout byte

// Layouts.
const (
	// LayoutSingle: the body is one segment stream under the object key
	// (PutObject).
	LayoutSingle Layout = 1
	// LayoutMultipart: the body is a sequence of self-describing parts, each
	// under its own part key; the object key only seals the metadata blob.
	LayoutMultipart Layout = 2
)

func (l Layout) String() string {
	switch l {
	case LayoutSingle:
		return "single"
	case LayoutMultipart:
		return "multipart"
	}
	return fmt.Sprintf("Layout(%d)", byte(l))
}

func (l Layout) valid() bool { return l == LayoutSingle || l == LayoutMultipart }

// KeyInfo names the data key an object or part was sealed with: the KMS key
// id that wraps it and the wrapped (KMS ciphertext) form of the DEK.
type KeyInfo struct {
	KeyID   string
	Wrapped []byte
	// Flags: only FlagAsymmetricWrap counts here. Parsed headers set it
	// when the wrapped DEK is an RSA ciphertext, so that the caller knows
	// which KMS unwrap to call before Open; a writer sets it in the header
	// it seals with this key info (as it does Config.Flags' bits).
	Flags Flags
}

// Flags are the bits of the flags byte (offset 5) of a version 3 object
// header or part header (FORMAT.md section 12). Version 1 and 2 headers
// have no flags; a reader refuses a bit it does not know.
type Flags byte

// Flag bits, the same values in the object header and the part header.
const (
	// FlagCompressed: the body (or the part's body) was compressed before
	// encryption.
	FlagCompressed Flags = 0x01
	// FlagAsymmetricWrap: the wrapped-DEK field holds an RSAES_OAEP_SHA_256
	// ciphertext of the DEK under the RSA public key the key id names.
	FlagAsymmetricWrap Flags = 0x02

	knownFlags = FlagCompressed | FlagAsymmetricWrap
)

// checkFlags validates the flags byte of a header of the given version:
// versions 1 and 2 have none, version 3 only the known bits.
func checkFlags(version byte, f byte) error {
	switch {
	case version < FlagsVersion && f != 0:
		return fmt.Errorf("%w: flags %#x in a version %d header", ErrFormat, f, version)
	case Flags(f)&^knownFlags != 0:
		return fmt.Errorf("%w: unknown header flags %#x", ErrFormat, f)
	}
	return nil
}

// writeFlags is the flags byte a writer puts in a header: the body flags
// of the object or part (fixed when it was made) and the wrap flag of the
// key info or the config. A header with flags needs version 3.
func writeFlags(version byte, body Flags, c Config, ki KeyInfo) (Flags, error) {
	if (c.Flags|ki.Flags)&^knownFlags != 0 {
		return 0, fmt.Errorf("%w: unknown flags %#x", ErrFormat, byte(c.Flags|ki.Flags))
	}
	f := body | (c.Flags|ki.Flags)&FlagAsymmetricWrap
	if f != 0 && version < FlagsVersion {
		return 0, fmt.Errorf("%w: flags %#x need format version %d, not %d", ErrFormat, byte(f), FlagsVersion, version)
	}
	return f, nil
}

// Errors. Every failure wraps one of these; test with errors.Is.
var (
	// ErrFormat: a header or part header is malformed, has an unknown
	// magic, or uses a feature this version does not know.
	ErrFormat = errors.New("envelope: malformed header")
	// ErrVersion: the header is of a format version this package cannot read.
	ErrVersion = errors.New("envelope: unsupported format version")
	// ErrAuth: an authentication tag did not verify: wrong data key,
	// header bound to another bucket/key/part, or tampered bytes.
	ErrAuth = errors.New("envelope: authentication failed")
	// ErrCommitment: the stored key commitment does not match the key.
	ErrCommitment = errors.New("envelope: key commitment mismatch")
	// ErrTruncated: the stored stream ended before the expected bytes.
	ErrTruncated = errors.New("envelope: ciphertext truncated")
	// ErrSizeMismatch: the plaintext source yielded fewer or more bytes
	// than declared.
	ErrSizeMismatch = errors.New("envelope: plaintext length differs from declared length")
	// ErrRange: a range lies outside the object or part.
	ErrRange = errors.New("envelope: invalid range")
	// ErrLayout: the operation does not apply to the object's layout.
	ErrLayout = errors.New("envelope: wrong layout for operation")
	// ErrKeySize: a data key is not 32 bytes.
	ErrKeySize = errors.New("envelope: data key must be 32 bytes")
	// ErrTooLarge: a header would exceed its size limit, or a part its
	// plaintext limit.
	ErrTooLarge = errors.New("envelope: too large")
	// ErrSize: a stored size no ciphertext can have.
	ErrSize = errors.New("envelope: impossible ciphertext size")
	// ErrReused: EncryptReader called twice on one Object or Part, or on
	// one that was opened rather than created (its nonces are spent).
	ErrReused = errors.New("envelope: key already used for encryption")
	// ErrClosed: a reader or key was used after Close.
	ErrClosed = errors.New("envelope: closed")
	// ErrIncomplete: a version 2 multipart object has no manifest: its
	// upload was completed at the store but never finalized by s3seal (or
	// its header was put back from before the upload completed).
	ErrIncomplete = errors.New("envelope: multipart object not finalized")
	// ErrManifest: the parts of a multipart object are not the ones its
	// sealed manifest lists (a part dropped, added, reordered or replaced).
	ErrManifest = errors.New("envelope: parts do not match the object's manifest")
)

// versionPrefix is "s3seal/<v>": the key AAD prefix, and the start of every
// HKDF info string ("s3seal/<v> body", ...).
func versionPrefix(version byte) string { return fmt.Sprintf("s3seal/%d", version) }

func validVersion(v byte) bool { return v >= MinVersion && v <= MaxVersion }

// derived holds the keys derived from one OEK or part key.
type derived struct {
	body, meta, commit, partHeader [KeySize]byte
}

func (d *derived) zero() {
	clear(d.body[:])
	clear(d.meta[:])
	clear(d.commit[:])
	clear(d.partHeader[:])
}

// derive runs HKDF-SHA256 (empty salt) over key: one Extract, then one
// Expand per info string of the format version.
func derive(key []byte, version byte, withPartHeader bool) (*derived, error) {
	prk, err := hkdf.Extract(sha256.New, key, nil)
	if err != nil {
		return nil, err
	}
	defer clear(prk)
	d := new(derived)
	out := []struct {
		dst  []byte
		info string
	}{
		{d.body[:], " body"},
		{d.meta[:], " meta"},
		{d.commit[:], " commit"},
	}
	if withPartHeader {
		out = append(out, struct {
			dst  []byte
			info string
		}{d.partHeader[:], " part header"})
	}
	prefix := versionPrefix(version)
	for _, o := range out {
		k, err := hkdf.Expand(sha256.New, prk, prefix+o.info, KeySize)
		if err != nil {
			d.zero()
			return nil, err
		}
		copy(o.dst, k)
		clear(k)
	}
	return d, nil
}

// newGCM returns AES-256-GCM keyed with key (32 bytes).
func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, ErrKeySize
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// keyAAD is the AAD under which an object key (part number 0) or a part key
// is sealed with the DEK. Version 1:
//
//	"s3seal/1" || layout || uint16 len(bucket) || bucket || uint16 len(key) || key || uint32 part
//
// Version 2 appends the upload identity (empty for object keys and single
// objects, UploadIDSize bytes for the parts of a multipart upload):
//
//	"s3seal/2" || ... || uint32 part || uint8 len(upload) || upload
//
// Version 3 is version 2 with the prefix "s3seal/3".
func keyAAD(version byte, layout Layout, bucket, key string, part uint32, upload []byte) ([]byte, error) {
	if len(bucket) > 0xffff || len(key) > 0xffff {
		return nil, fmt.Errorf("%w: bucket or key longer than 65535 bytes", ErrTooLarge)
	}
	if version == 1 && len(upload) > 0 || len(upload) > 0xff {
		return nil, fmt.Errorf("%w: upload identity of %d bytes for version %d", ErrFormat, len(upload), version)
	}
	prefix := versionPrefix(version)
	b := make([]byte, 0, len(prefix)+1+2+len(bucket)+2+len(key)+4+1+len(upload))
	b = append(b, prefix...)
	b = append(b, byte(layout))
	b = binary.BigEndian.AppendUint16(b, uint16(len(bucket)))
	b = append(b, bucket...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint32(b, part)
	if version >= 2 {
		b = append(b, byte(len(upload)))
		b = append(b, upload...)
	}
	return b, nil
}

// sealKey seals a 32-byte key with the DEK; it returns nonce and
// ciphertext||tag.
func sealKey(rnd io.Reader, dek, k []byte, aad []byte) (nonce [NonceSize]byte, sealed []byte, err error) {
	g, err := newGCM(dek)
	if err != nil {
		return nonce, nil, err
	}
	if _, err := io.ReadFull(rnd, nonce[:]); err != nil {
		return nonce, nil, fmt.Errorf("envelope: random source: %w", err)
	}
	return nonce, g.Seal(nil, nonce[:], k, aad), nil
}

// openKey unseals a key sealed by sealKey.
func openKey(dek []byte, nonce, sealed, aad []byte) ([]byte, error) {
	g, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	k, err := g.Open(nil, nonce, sealed, aad)
	if err != nil || len(k) != KeySize {
		clear(k)
		return nil, fmt.Errorf("%w: cannot unseal key (wrong data key, or header bound to another bucket/key/part)", ErrAuth)
	}
	return k, nil
}

// randKey draws a fresh 32-byte key.
func randKey(rnd io.Reader) ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := io.ReadFull(rnd, k); err != nil {
		return nil, fmt.Errorf("envelope: random source: %w", err)
	}
	return k, nil
}

// Config carries the injectable dependencies. The zero value is ready to use
// and draws randomness from crypto/rand; tests set Rand to make output
// deterministic. The package-level functions use the zero Config.
type Config struct {
	// Rand supplies object keys, part keys and nonces. nil means crypto/rand.
	Rand io.Reader

	// Flags selects the format version 3 features of the objects and parts
	// this Config makes (NewObject, NewPart). Zero writes version 2, byte
	// for byte as before version 3 existed; any flag writes version 3.
	Flags Flags

	// Level is how hard the compressed bodies this Config's objects
	// encrypt are compressed (EncryptCompressedReader); "" is
	// LevelDefault. It is written nowhere: readers need not know it.
	Level Level

	// version is the format version written; 0 means Version, or
	// FlagsVersion when Flags has a bit. Only the golden tests write an
	// older version (to check that its files still come out byte for
	// byte), and the tests write version 3 without flags.
	version byte
}

func (c Config) writeVersion() byte {
	switch {
	case c.version != 0:
		return c.version
	case c.Flags != 0:
		return FlagsVersion
	}
	return Version
}

func (c Config) rand() io.Reader {
	if c.Rand == nil {
		return rand.Reader
	}
	return c.Rand
}

// appendLV appends a uint16-length-prefixed field.
func appendLV(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// reader is a little cursor over a header for decoding.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	v := r.take(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u16() int {
	v := r.take(2)
	if v == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(v))
}

func (r *reader) lv() []byte { return r.take(r.u16()) }

func checkKeyInfo(ki KeyInfo) error {
	if len(ki.KeyID) > 0xffff || len(ki.Wrapped) > 0xffff {
		return fmt.Errorf("%w: key id or wrapped key longer than 65535 bytes", ErrTooLarge)
	}
	return nil
}
