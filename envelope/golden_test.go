package envelope

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Golden objects pin every format version: TestGolden decrypts the files in
// testdata/envelope forever, and checks that the encoder, fed the same
// deterministic randomness, still produces them byte for byte (the version
// 1 files with the version 1 encoder that Config.version selects).
// Regenerate with
//
//	go test ./envelope -run TestGolden -update
//
// which must rewrite the files of every existing version identically: a
// format change is a new version, in new files (git diff shows only those).
var update = flag.Bool("update", false, "rewrite golden files and fuzz seed corpus")

const goldenDir = "../testdata/envelope"

// goldenManifest describes one golden object. The DEK is a TEST-ONLY key
// derived from a fixed seed; the wrapped form is fake (not a KMS
// ciphertext) and only shows where a real one goes. Fields after Parts are
// version 2 additions: optional, so that the version 1 files keep their
// bytes.
type goldenManifest struct {
	FormatVersion int          `json:"format_version"`
	Description   string       `json:"description"`
	Layout        string       `json:"layout"`
	Bucket        string       `json:"bucket"`
	Key           string       `json:"key"`
	DEKHex        string       `json:"test_only_dek_hex"`
	KeyID         string       `json:"key_id"`
	WrappedHex    string       `json:"fake_wrapped_dek_hex"`
	HeaderValue   string       `json:"header_value"`
	Meta          string       `json:"meta"`
	PlaintextFile string       `json:"plaintext_file"`
	PlaintextSize int64        `json:"plaintext_size"`
	BodyFile      string       `json:"body_file"`
	StoredSize    int64        `json:"stored_size"`
	Parts         []goldenPart `json:"parts,omitempty"`

	// StoreETag is the ETag S3 gives the stored body (without quotes): the
	// MD5 of the body, or for a multipart object the MD5 of its parts' MD5s
	// with "-N" appended. Readers take the part count N from it.
	StoreETag string `json:"store_etag,omitempty"`
	// UploadHex is the upload identity U the parts are sealed to.
	UploadHex string `json:"upload_hex,omitempty"`
	// ManifestDigestHex is the manifest digest sealed in the metadata.
	ManifestDigestHex string `json:"manifest_digest_hex,omitempty"`
	// PendingHeaderValue and PendingMeta are the header the object had
	// between CreateMultipartUpload and its finalization (same OEK, no
	// manifest): it opens, and readers refuse the object with it.
	PendingHeaderValue string `json:"pending_header_value,omitempty"`
	PendingMeta        string `json:"pending_meta,omitempty"`
}

type goldenPart struct {
	PartNumber    int    `json:"part_number"`
	PlaintextSize int64  `json:"plaintext_size"`
	SegmentSize   int    `json:"segment_size"`
	KeyID         string `json:"key_id"`
	DEKHex        string `json:"test_only_dek_hex"`
	WrappedHex    string `json:"fake_wrapped_dek_hex"`

	// Compressed parts (FORMAT.md 12.2.3), and the parts of an object that
	// may hold them: the part's format version when it is not the
	// object's, and a compressed part's algorithm and block size (its
	// segment size is then 0).
	FormatVersion int    `json:"format_version,omitempty"`
	Algorithm     string `json:"algorithm,omitempty"`
	BlockSize     int    `json:"block_size,omitempty"`
}

type goldenCase struct {
	name  string
	m     goldenManifest
	plain []byte
	body  []byte
}

// goldenDEK returns the test-only data key number i and its fake wrapped form.
func goldenDEK(i byte) ([]byte, KeyInfo) {
	c := mrand.NewChaCha8([32]byte{'g', 'o', 'l', 'd', 'e', 'n', '-', 'd', 'e', 'k', i})
	dek := make([]byte, KeySize)
	_, _ = c.Read(dek)
	wrapped := []byte(fmt.Sprintf("FAKE-WRAPPED-DEK-%d (not a KMS ciphertext)", i))
	return dek, KeyInfo{KeyID: fmt.Sprintf("arn:aws:kms:eu-west-1:111122223333:key/golden-%d", i), Wrapped: wrapped}
}

// s3ETag is the ETag S3 gives an object uploaded as these stored parts: the
// MD5 of the body for a single upload (one part and multipart false),
// else the MD5 of the parts' MD5s and "-N".
func s3ETag(multipart bool, parts ...[]byte) string {
	if !multipart {
		sum := md5.Sum(bytes.Join(parts, nil))
		return hex.EncodeToString(sum[:])
	}
	var sums []byte
	for _, p := range parts {
		sum := md5.Sum(p)
		sums = append(sums, sum[:]...)
	}
	sum := md5.Sum(sums)
	return fmt.Sprintf("%x-%d", sum, len(parts))
}

// goldenCases builds the golden objects from deterministic randomness.
func goldenCases(t testing.TB) []goldenCase {
	t.Helper()
	cfg := func(name string, version byte) Config {
		var seed [32]byte
		copy(seed[:], "golden rand "+name)
		return Config{Rand: mrand.NewChaCha8(seed), version: version}
	}
	var cases []goldenCase
	single := func(name, desc string, version byte, plain []byte, bucket, key, meta string) {
		dek, ki := goldenDEK(1)
		o, err := cfg(name, version).NewObject(dek, ki, bucket, key, LayoutSingle, []byte(meta))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(o.EncryptReader(bytes.NewReader(plain), int64(len(plain))))
		if err != nil {
			t.Fatal(err)
		}
		m := goldenManifest{
			FormatVersion: int(version), Description: desc, Layout: LayoutSingle.String(),
			Bucket: bucket, Key: key, DEKHex: hex.EncodeToString(dek), KeyID: ki.KeyID,
			WrappedHex: hex.EncodeToString(ki.Wrapped), HeaderValue: o.HeaderValue(), Meta: meta,
			PlaintextSize: int64(len(plain)), StoredSize: int64(len(body)),
		}
		if version >= 2 {
			m.StoreETag = s3ETag(false, body)
		}
		cases = append(cases, goldenCase{name: name, plain: plain, body: body, m: m})
	}
	// Version 1: its metadata blobs predate Meta (any JSON was allowed).
	single("v1-single-empty", "single layout, empty object: one empty final segment (16-byte tag)",
		1, nil, "golden-bucket", "empty", `{}`)
	single("v1-single-small", "single layout, 100-byte object: one final segment",
		1, bytes.Repeat([]byte("s3seal golden\n"), 8)[:100], "golden-bucket", "dir/small.txt",
		`{"md5":"placeholder","meta":{"color":"blue"}}`)
	single("v1-single-3seg", "single layout, 2*65536+1000 bytes: two full segments and a final one of 1000 bytes",
		1, randBytes(3, 2*S+1000), "golden-bucket", "a key/with spaces+plus%2F", `{"size":132072}`)

	// Multipart: the object header (metadata only) and two parts sealed with
	// two different data keys, as on two proxy instances.
	{
		name := "v1-multipart"
		dek, ki := goldenDEK(1)
		const bucket, key = "golden-bucket", "multi/part.bin"
		meta := `{"parts":2}`
		o, err := cfg(name, 1).NewObject(dek, ki, bucket, key, LayoutMultipart, []byte(meta))
		if err != nil {
			t.Fatal(err)
		}
		m := goldenManifest{
			FormatVersion: 1, Description: "multipart layout: object header (metadata) + part 1 of 70000 bytes (key 2) + part 2 of 10 bytes (key 3)",
			Layout: LayoutMultipart.String(), Bucket: bucket, Key: key, DEKHex: hex.EncodeToString(dek), KeyID: ki.KeyID,
			WrappedHex: hex.EncodeToString(ki.Wrapped), HeaderValue: o.HeaderValue(), Meta: meta,
		}
		var plain, body []byte
		for i, size := range []int{70000, 10} {
			pdek, pki := goldenDEK(byte(2 + i))
			pp := randBytes(uint64(10+i), size)
			p, err := cfg(fmt.Sprint(name, i), 1).NewPart(pdek, pki, bucket, key, nil, i+1, int64(size))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(p.EncryptReader(bytes.NewReader(pp)))
			if err != nil {
				t.Fatal(err)
			}
			plain = append(plain, pp...)
			body = append(body, b...)
			m.Parts = append(m.Parts, goldenPart{PartNumber: i + 1, PlaintextSize: int64(size), SegmentSize: PartSegmentSize(int64(size)),
				KeyID: pki.KeyID, DEKHex: hex.EncodeToString(pdek), WrappedHex: hex.EncodeToString(pki.Wrapped)})
		}
		m.PlaintextSize, m.StoredSize = int64(len(plain)), int64(len(body))
		cases = append(cases, goldenCase{name: name, m: m, plain: plain, body: body})
	}

	// Version 2: the metadata blob is a Meta.
	{
		plain := bytes.Repeat([]byte("s3seal golden, format version 2\n"), 7)[:200]
		md := md5.Sum(plain)
		crc := binary.BigEndian.AppendUint32(nil, crc32.Checksum(plain, crc32.MakeTable(crc32.Castagnoli)))
		meta := &Meta{
			Size:     int64(len(plain)),
			User:     map[string]string{"color": "blue", "s3cmd-attrs": "uid:1000/gid:1000"},
			MD5:      base64.StdEncoding.EncodeToString(md[:]),
			Checksum: map[string]string{"x-amz-checksum-crc32c": base64.StdEncoding.EncodeToString(crc)},
			Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8",
				"Content-Disposition": `attachment; filename="small.txt"`, "Cache-Control": "no-cache"},
		}
		single("v2-single-small", "single layout, 200-byte object: one final segment; the sealed Meta has content headers (h), user metadata, MD5 and a CRC32C",
			2, plain, "golden-bucket", "dir/small-v2.txt", string(meta.Encode()))
	}
	mp := goldenMultipartV2(t, cfg)
	cases = append(cases, mp, goldenMultipartMigrated(t, cfg, mp))

	// Version 3, compressed (FORMAT.md 12.2): three blocks of 64 KiB (the
	// smallest block size, to keep the files small): JSON lines that
	// compress, random bytes stored raw, and a short compressible tail.
	for _, alg := range []Algorithm{AlgS2, AlgZstd} {
		name := "v3-compressed-" + string(alg)
		dek, ki := goldenDEK(1)
		plain := slices.Concat(compressible(31, MinBlockSize), randBytes(32, MinBlockSize), compressible(33, 1000))
		meta := &Meta{
			Size: int64(len(plain)), Headers: map[string]string{"Content-Type": "application/x-ndjson"},
			Compression: &Compression{Algorithm: alg, BlockSize: MinBlockSize},
		}
		c := cfg(name, 0)
		c.Flags = FlagCompressed
		o, err := c.NewObject(dek, ki, "golden-bucket", "logs/"+name+".jsonl", LayoutSingle, meta.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(o.EncryptCompressedReader(bytes.NewReader(plain)))
		o.Close()
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, goldenCase{name: name, plain: plain, body: body, m: goldenManifest{
			FormatVersion: 3, Layout: LayoutSingle.String(), Bucket: "golden-bucket", Key: "logs/" + name + ".jsonl",
			Description: "single layout, version 3, compressed with " + string(alg) + " in 64 KiB blocks: block 0 JSON lines (compressed), " +
				"block 1 random (stored raw), block 2 1000 bytes of JSON lines (compressed), then the sealed block index",
			DEKHex: hex.EncodeToString(dek), KeyID: ki.KeyID, WrappedHex: hex.EncodeToString(ki.Wrapped),
			HeaderValue: o.HeaderValue(), Meta: string(meta.Encode()), PlaintextSize: int64(len(plain)),
			StoredSize: int64(len(body)), StoreETag: s3ETag(false, body),
		}})
	}
	cases = append(cases, goldenAsymCases(t, cfg)...)
	cases = append(cases, goldenCompressedMultipart(t, cfg))
	for i := range cases {
		cases[i].m.PlaintextFile = cases[i].name + ".plain"
		cases[i].m.BodyFile = cases[i].name + ".body"
	}
	return cases
}

// goldenMultipartV2 builds v2-multipart as the proxy does: at
// CreateMultipartUpload an upload identity U and a pending header (sealed
// Meta with U and the create headers, no manifest); three parts sealed to
// U with two data keys; at CompleteMultipartUpload the part map read from
// the stored body, its manifest, and the final header: the same OEK
// resealed with the manifest in its Meta.
func goldenMultipartV2(t testing.TB, cfg func(string, byte) Config) goldenCase {
	t.Helper()
	const name, bucket, key = "v2-multipart", "golden-bucket", "multi/part-v2.bin"
	dek, ki := goldenDEK(1)
	upload, err := cfg(name+" upload", 2).NewUploadID()
	if err != nil {
		t.Fatal(err)
	}
	pending := &Meta{
		Size:    -1,
		User:    map[string]string{"origin": "golden"},
		Headers: map[string]string{"Content-Type": "application/octet-stream"},
		Upload:  upload,
		Create:  map[string]string{"X-Amz-Storage-Class": "STANDARD_IA"},
	}
	o, err := cfg(name, 2).NewObject(dek, ki, bucket, key, LayoutMultipart, pending.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	m := goldenManifest{
		FormatVersion: 2, Layout: LayoutMultipart.String(), Bucket: bucket, Key: key,
		Description: "multipart layout, version 2: object header (metadata, with upload identity and manifest) + " +
			"part 1 of 70000 bytes (key 2) + part 2 of 70000 bytes (key 3) + part 3 of 10 bytes (key 2), all sealed to the upload identity",
		DEKHex: hex.EncodeToString(dek), KeyID: ki.KeyID, WrappedHex: hex.EncodeToString(ki.Wrapped),
		UploadHex: hex.EncodeToString(upload), PendingHeaderValue: o.HeaderValue(), PendingMeta: string(pending.Encode()),
	}
	var plain, body []byte
	var stored [][]byte
	for i, size := range []int{70000, 70000, 10} {
		pdek, pki := goldenDEK(byte(2 + i%2))
		pp := randBytes(uint64(20+i), size)
		p, err := cfg(fmt.Sprint(name, i), 2).NewPart(pdek, pki, bucket, key, upload, i+1, int64(size))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p.EncryptReader(bytes.NewReader(pp)))
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, pp...)
		body = append(body, b...)
		stored = append(stored, b)
		m.Parts = append(m.Parts, goldenPart{PartNumber: i + 1, PlaintextSize: int64(size), SegmentSize: PartSegmentSize(int64(size)),
			KeyID: pki.KeyID, DEKHex: hex.EncodeToString(pdek), WrappedHex: hex.EncodeToString(pki.Wrapped)})
	}
	pm, err := ReadPartMap(len(stored), int64(len(body)), bodyFetcher(body))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := pm.Manifest(upload)
	if err != nil {
		t.Fatal(err)
	}
	final := *pending
	final.Manifest, final.Create = mf, nil
	m.Meta = string(final.Encode())
	if m.HeaderValue, err = o.Reseal(dek, ki, bucket, key, []byte(m.Meta)); err != nil {
		t.Fatal(err)
	}
	m.ManifestDigestHex = hex.EncodeToString(mf.Digest)
	m.PlaintextSize, m.StoredSize, m.StoreETag = int64(len(plain)), int64(len(body)), s3ETag(true, stored...)
	return goldenCase{name: name, m: m, plain: plain, body: body}
}

// goldenCompressedMultipart builds v3-compressed-multipart as the proxy
// does for a bucket with compression on (FORMAT.md 12.2.3): a version 3
// object header with FlagCompressed (pending, then finalized), and parts
// sealed to its upload: part 1 compressed with s2 in 64 KiB blocks (JSON
// lines, compressed; random, stored raw; 1000 bytes of JSON lines), part
// 2 a version 2 part of random bytes (the adaptive check stored it
// uncompressed), part 3 compressed with zstd (JSON lines over two
// blocks), part 4 an empty compressed part (its body the index alone).
// No part is near 5 MiB, so none is padded (the tests cover that).
func goldenCompressedMultipart(t testing.TB, cfg func(string, byte) Config) goldenCase {
	t.Helper()
	const name, bucket, key = "v3-compressed-multipart", "golden-bucket", "logs/multipart.jsonl"
	dek, ki := goldenDEK(1)
	upload, err := cfg(name+" upload", 3).NewUploadID()
	if err != nil {
		t.Fatal(err)
	}
	pending := &Meta{
		Size:    -1,
		Headers: map[string]string{"Content-Type": "application/x-ndjson"},
		Upload:  upload,
		Create:  map[string]string{"X-Amz-Storage-Class": "STANDARD_IA"},
	}
	c := cfg(name, 0)
	c.Flags = FlagCompressed
	o, err := c.NewObject(dek, ki, bucket, key, LayoutMultipart, pending.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	m := goldenManifest{
		FormatVersion: 3, Layout: LayoutMultipart.String(), Bucket: bucket, Key: key,
		Description: "multipart layout, version 3, object header with the compressed flag (parts may be compressed): " +
			"part 1 compressed with s2 in 64 KiB blocks (JSON lines, random bytes stored raw, 1000 bytes of JSON lines; key 2), " +
			"part 2 a version 2 part of 70000 random bytes (stored uncompressed; key 3), part 3 compressed with zstd in 64 KiB blocks " +
			"(100000 bytes of JSON lines; key 2), part 4 an empty compressed part (s2; key 3), all sealed to the upload identity",
		DEKHex: hex.EncodeToString(dek), KeyID: ki.KeyID, WrappedHex: hex.EncodeToString(ki.Wrapped),
		UploadHex: hex.EncodeToString(upload), PendingHeaderValue: o.HeaderValue(), PendingMeta: string(pending.Encode()),
	}
	plains := [][]byte{
		slices.Concat(compressible(41, MinBlockSize), randBytes(42, MinBlockSize), compressible(43, 1000)),
		randBytes(44, 70000),
		compressible(45, 100000),
		nil,
	}
	algs := []Algorithm{AlgS2, "", AlgZstd, AlgS2}
	var plain, body []byte
	var stored [][]byte
	for i, pp := range plains {
		pdek, pki := goldenDEK(byte(2 + i%2))
		gp := goldenPart{PartNumber: i + 1, PlaintextSize: int64(len(pp)), KeyID: pki.KeyID, DEKHex: hex.EncodeToString(pdek), WrappedHex: hex.EncodeToString(pki.Wrapped)}
		var b []byte
		if algs[i] == "" {
			p, err := cfg(fmt.Sprint(name, i), 2).NewPart(pdek, pki, bucket, key, upload, i+1, int64(len(pp)))
			if err != nil {
				t.Fatal(err)
			}
			if b, err = io.ReadAll(p.EncryptReader(bytes.NewReader(pp))); err != nil {
				t.Fatal(err)
			}
			gp.SegmentSize, gp.FormatVersion = PartSegmentSize(int64(len(pp))), 2
		} else {
			comp := Compression{Algorithm: algs[i], BlockSize: MinBlockSize}
			p, err := cfg(fmt.Sprint(name, i), 0).NewCompressedPart(pdek, pki, bucket, key, upload, i+1, int64(len(pp)), comp)
			if err != nil {
				t.Fatal(err)
			}
			var bb bytes.Buffer
			ph, err := p.EncryptCompressed(bytes.NewReader(pp), &bb)
			if err != nil {
				t.Fatal(err)
			}
			b = slices.Concat(ph.Bytes(), bb.Bytes(), make([]byte, ph.PadSize()))
			gp.Algorithm, gp.BlockSize = string(comp.Algorithm), comp.BlockSize
		}
		plain = append(plain, pp...)
		body = append(body, b...)
		stored = append(stored, b)
		m.Parts = append(m.Parts, gp)
	}
	pm, err := ReadPartMap(len(stored), int64(len(body)), bodyFetcher(body))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := pm.ManifestFlags(upload, FlagCompressed)
	if err != nil {
		t.Fatal(err)
	}
	final := *pending
	final.Manifest, final.Create = mf, nil
	m.Meta = string(final.Encode())
	if m.HeaderValue, err = o.Reseal(dek, ki, bucket, key, []byte(m.Meta)); err != nil {
		t.Fatal(err)
	}
	m.ManifestDigestHex = hex.EncodeToString(mf.Digest)
	m.PlaintextSize, m.StoredSize, m.StoreETag = int64(len(plain)), int64(len(body)), s3ETag(true, stored...)
	return goldenCase{name: name, m: m, plain: plain, body: body}
}

// goldenMultipartMigrated is v2-multipart re-wrapped for another bucket,
// key and data key as s3seal migrate writes it (FORMAT.md 11.10): each
// part header resealed (same part key, upload identity and part number;
// the segments byte for byte those of v2-multipart), the manifest over the
// new headers, and a fresh object header with the source marker. It has no
// pending header: the destination upload is created with the final one.
func goldenMultipartMigrated(t testing.TB, cfg func(string, byte) Config, src goldenCase) goldenCase {
	t.Helper()
	const name, bucket, key = "v2-multipart-migrated", "golden-bucket-b", "moved/part-v2.bin"
	dek, ki := goldenDEK(4)
	upload := unhexT(t, src.m.UploadHex)
	srcMeta, err := DecodeMeta([]byte(src.m.Meta))
	if err != nil {
		t.Fatal(err)
	}
	m := goldenManifest{
		FormatVersion: 2, Layout: LayoutMultipart.String(), Bucket: bucket, Key: key,
		Description: "v2-multipart re-wrapped (FORMAT.md 11.10) for another bucket, key and data key (key 4): every part header " +
			"resealed, the segments unchanged, a new manifest and object header with the source marker (mg)",
		DEKHex: hex.EncodeToString(dek), KeyID: ki.KeyID, WrappedHex: hex.EncodeToString(ki.Wrapped), UploadHex: src.m.UploadHex,
	}
	var body []byte
	var stored [][]byte
	var hdrs []*PartHeader
	rest := src.body
	for i, gp := range src.m.Parts {
		ph, err := ParsePartHeader(rest)
		if err != nil {
			t.Fatal(err)
		}
		p, err := OpenPart(ph, unhexT(t, gp.DEKHex), src.m.Bucket, src.m.Key, upload)
		if err != nil {
			t.Fatal(err)
		}
		nph, err := cfg(fmt.Sprint(name, i), 2).ResealPart(p, dek, ki, bucket, key)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		size := ph.CiphertextSize()
		b := append(nph.Bytes(), rest[PartHeaderSize:size]...)
		rest = rest[size:]
		body = append(body, b...)
		stored = append(stored, b)
		hdrs = append(hdrs, nph)
		m.Parts = append(m.Parts, goldenPart{PartNumber: gp.PartNumber, PlaintextSize: gp.PlaintextSize, SegmentSize: gp.SegmentSize,
			KeyID: ki.KeyID, DEKHex: hex.EncodeToString(dek), WrappedHex: hex.EncodeToString(ki.Wrapped)})
	}
	pm, err := PartMapOf(hdrs)
	if err != nil {
		t.Fatal(err)
	}
	meta := *srcMeta
	if meta.Manifest, err = pm.Manifest(upload); err != nil {
		t.Fatal(err)
	}
	meta.Source = &Source{ETag: `"` + src.m.StoreETag + `"`, Size: src.m.StoredSize}
	m.Meta = string(meta.Encode())
	o, err := cfg(name, 2).NewObject(dek, ki, bucket, key, LayoutMultipart, []byte(m.Meta))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	m.HeaderValue = o.HeaderValue()
	m.ManifestDigestHex = hex.EncodeToString(meta.Manifest.Digest)
	m.PlaintextSize, m.StoredSize, m.StoreETag = src.m.PlaintextSize, int64(len(body)), s3ETag(true, stored...)
	return goldenCase{name: name, m: m, plain: src.plain, body: body}
}

func unhexT(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	if *update {
		writeGolden(t, cases)
	}
	manifests, err := filepath.Glob(filepath.Join(goldenDir, "v*.json"))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, path := range manifests {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		found[name] = true
		t.Run(name, func(t *testing.T) {
			var m goldenManifest
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			plain, err := os.ReadFile(filepath.Join(goldenDir, m.PlaintextFile))
			if err != nil {
				t.Fatal(err)
			}
			body, err := os.ReadFile(filepath.Join(goldenDir, m.BodyFile))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, &m, plain, body)
			// The encoder still writes exactly these bytes. For a compressed
			// body only its header and plaintext: the compressor's output is
			// not the format (any valid compressed block decodes), and may
			// change with the klauspost/compress version.
			for _, c := range cases {
				if c.name == name && c.m.Layout == LayoutMultipart.String() && isCompressedGolden(&m) {
					// The compressed parts' lengths, and so the part
					// headers, the manifest and the object header, follow
					// the compressor's output: only the plaintext and
					// the shape of the parts are the format's.
					if !bytes.Equal(c.plain, plain) || !reflect.DeepEqual(c.m.Parts, m.Parts) || c.m.PendingHeaderValue != m.PendingHeaderValue {
						t.Fatalf("encoder output differs from the golden file: the v%d format changed", m.FormatVersion)
					}
				} else if c.name == name && c.m.Meta == m.Meta && isCompressedGolden(&m) {
					if c.m.HeaderValue != m.HeaderValue || !bytes.Equal(c.plain, plain) {
						t.Fatalf("encoder output differs from the golden file: the v%d format changed", m.FormatVersion)
					}
				} else if c.name == name {
					if !reflect.DeepEqual(c.m, m) || !bytes.Equal(c.body, body) || !bytes.Equal(c.plain, plain) {
						t.Fatalf("encoder output differs from the golden file: the v%d format changed", m.FormatVersion)
					}
				}
			}
		})
	}
	for _, c := range cases {
		if !found[c.name] {
			t.Errorf("golden file %s.json missing (run with -update)", c.name)
		}
	}
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGolden decrypts a golden object with the package's API, as the proxy
// reads it: header, sealed metadata, sizes, and for multipart objects the
// part map verified against the manifest before any plaintext.
func checkGolden(t *testing.T, m *goldenManifest, plain, body []byte) {
	if m.FormatVersion < MinVersion || m.FormatVersion > MaxVersion || int64(len(plain)) != m.PlaintextSize || int64(len(body)) != m.StoredSize {
		t.Fatal("manifest does not match files")
	}
	h, err := ParseHeader(m.HeaderValue)
	if err != nil {
		t.Fatal(err)
	}
	if ki := h.KeyInfo(); ki.KeyID != m.KeyID || hex.EncodeToString(ki.Wrapped) != m.WrappedHex || h.Layout().String() != m.Layout || h.Version() != m.FormatVersion {
		t.Fatalf("header key info %q %x layout %v version %d", ki.KeyID, ki.Wrapped, h.Layout(), h.Version())
	}
	dek := unhex(t, m.DEKHex)
	o, err := Open(h, dek, m.Bucket, m.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if string(o.Meta()) != m.Meta || o.Version() != m.FormatVersion {
		t.Fatalf("meta %q, version %d", o.Meta(), o.Version())
	}
	stored := int64(len(body))
	compressedMP := isCompressedGolden(m) && h.Layout() == LayoutMultipart
	if isCompressedGolden(m) && !compressedMP {
		checkCompressedGolden(t, o, m, plain, body)
		return
	}
	// Version 1 blobs are any JSON; version 2 blobs are Meta, written in
	// Meta's canonical encoding, and the size comes from PlainSize.
	meta := &Meta{Size: -1}
	if m.FormatVersion >= 2 {
		if meta, err = DecodeMeta(o.Meta()); err != nil || string(meta.Encode()) != m.Meta {
			t.Fatalf("DecodeMeta: %v, re-encoded %q", err, meta.Encode())
		}
		if p, err := o.PlainSize(meta, stored, `"`+m.StoreETag+`"`); err != nil || p != m.PlaintextSize {
			t.Fatalf("PlainSize: %d, %v", p, err)
		}
		// A multipart object whose parts may be compressed has its size in
		// its manifest only (FORMAT.md 12.2.3).
		if ls, ok := ListedSize(stored, m.StoreETag); !compressedMP && (!ok || ls != m.PlaintextSize) {
			t.Fatalf("ListedSize: %d, %v", ls, ok)
		}
	}
	switch h.Layout() {
	case LayoutSingle:
		if p, err := PlaintextSize(stored); err != nil || p != m.PlaintextSize {
			t.Fatalf("PlaintextSize: %d, %v", p, err)
		}
		got, err := decryptAll(o, body, m.PlaintextSize)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("decrypt: %v", err)
		}
		if len(plain) > 2 {
			off, n := int64(len(plain)/2), int64(len(plain)/3)
			got, err := decryptRange(o, body, m.PlaintextSize, off, n, 4096)
			if err != nil || !bytes.Equal(got, plain[off:off+n]) {
				t.Fatalf("range: %v", err)
			}
		}
	case LayoutMultipart:
		if p, err := MultipartPlaintextSize(stored, len(m.Parts)); !compressedMP && (err != nil || p != m.PlaintextSize) {
			t.Fatalf("MultipartPlaintextSize: %d, %v", p, err)
		}
		var upload []byte
		if m.FormatVersion >= 2 {
			upload = unhex(t, m.UploadHex)
			if !bytes.Equal(meta.Upload, upload) || meta.Manifest == nil || hex.EncodeToString(meta.Manifest.Digest) != m.ManifestDigestHex {
				t.Fatalf("sealed upload %x, manifest %+v", meta.Upload, meta.Manifest)
			}
		}
		pm, err := ReadPartMap(len(m.Parts), stored, bodyFetcher(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := pm.VerifyFlags(m.FormatVersion, h.Flags(), meta); err != nil || !pm.Verified() {
			t.Fatalf("Verify: %v, verified %v", err, pm.Verified())
		}
		deks := map[string][]byte{}
		for i, gp := range m.Parts {
			num, _, size, off := pm.Part(i)
			ph, err := bodyFetcher(body)(off)
			if err != nil {
				t.Fatal(err)
			}
			pv := m.FormatVersion
			if gp.FormatVersion != 0 {
				pv = gp.FormatVersion
			}
			var alg string
			var bs int
			if c := ph.Compression(); c != nil {
				alg, bs = string(c.Algorithm), c.BlockSize
			}
			if num != gp.PartNumber || size != gp.PlaintextSize || ph.PartNumber() != gp.PartNumber || ph.PlainLen() != gp.PlaintextSize ||
				ph.SegmentSize() != gp.SegmentSize || ph.KeyInfo().KeyID != gp.KeyID || ph.Version() != pv ||
				alg != gp.Algorithm || bs != gp.BlockSize {
				t.Fatalf("part %d: map %d %d, header %d %d %d v%d", i, num, size, ph.PartNumber(), ph.PlainLen(), ph.SegmentSize(), ph.Version())
			}
			deks[gp.KeyID] = unhex(t, gp.DEKHex)
		}
		open := openWith(deks, m.Bucket, m.Key, upload)
		for _, chunk := range []int{1 << 20, 0} {
			got, err := readMultipart(body, pm, 0, m.PlaintextSize, open, chunk)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("multipart read (chunk %d): %v", chunk, err)
			}
		}
		// A range from part 1's second segment (its header fetched apart)
		// into the next part.
		off, n := int64(S+100), m.PlaintextSize-S-105
		got, err := readMultipart(body, pm, off, n, open, 1000)
		if err != nil || !bytes.Equal(got, plain[off:off+n]) {
			t.Fatalf("multipart range: %v", err)
		}
	default:
		t.Fatalf("layout %v", h.Layout())
	}
	if m.PendingHeaderValue == "" {
		return
	}
	// The pending header opens (same OEK, same path) but readers refuse
	// the object with it: it has no manifest.
	ph, err := ParseHeader(m.PendingHeaderValue)
	if err != nil {
		t.Fatal(err)
	}
	po, err := Open(ph, dek, m.Bucket, m.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer po.Close()
	pmeta, err := DecodeMeta(po.Meta())
	if err != nil || string(po.Meta()) != m.PendingMeta || pmeta.Manifest != nil || !bytes.Equal(pmeta.Upload, meta.Upload) {
		t.Fatalf("pending meta %q: %v", po.Meta(), err)
	}
	if _, err := po.PlainSize(pmeta, stored, m.StoreETag); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("PlainSize with the pending header: %v", err)
	}
	pm, err := ReadPartMap(len(m.Parts), stored, bodyFetcher(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := pm.VerifyFlags(Version, ph.Flags(), pmeta); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Verify with the pending header: %v", err)
	}
}

func isCompressedGolden(m *goldenManifest) bool {
	h, err := ParseHeader(m.HeaderValue)
	return err == nil && h.Flags()&FlagCompressed != 0
}

// checkCompressedGolden reads a compressed golden object as the proxy
// does: its size from the sealed metadata, the whole body in one read, and
// a range through the block index.
func checkCompressedGolden(t *testing.T, o *Object, m *goldenManifest, plain, body []byte) {
	meta, err := DecodeMeta(o.Meta())
	if err != nil || string(meta.Encode()) != m.Meta || meta.Compression == nil || o.Compression() == nil || *o.Compression() != *meta.Compression {
		t.Fatalf("DecodeMeta: %v, %+v", err, meta)
	}
	if p, err := o.PlainSize(meta, int64(len(body)), `"`+m.StoreETag+`"`); err != nil || p != m.PlaintextSize {
		t.Fatalf("PlainSize: %d, %v", p, err)
	}
	got, err := readAllBuf(o.DecryptCompressedReader(bytes.NewReader(body), nil, 0, m.PlaintextSize), 1<<20)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypt: %v", err)
	}
	idx, err := readIndex(o, body)
	if err != nil {
		t.Fatal(err)
	}
	off, n := int64(len(plain)/2), int64(len(plain)/3)
	if got, err := compRange(o, idx, body, off, n, 4096); err != nil || !bytes.Equal(got, plain[off:off+n]) {
		t.Fatalf("range: %v", err)
	}
}

func writeGolden(t *testing.T, cases []goldenCase) {
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		j, err := json.MarshalIndent(c.m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{c.name + ".json": append(j, '\n'), c.m.PlaintextFile: c.plain, c.m.BodyFile: c.body} {
			if err := os.WriteFile(filepath.Join(goldenDir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Fuzz seed corpus (testdata/fuzz/<Target>/<name>, "go test fuzz v1").
	seed := func(target, name string, vals ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		data := "go test fuzz v1\n" + strings.Join(vals, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bs := func(b []byte) string { return "[]byte(" + strconv.Quote(string(b)) + ")" }
	i64 := func(v int64) string { return "int64(" + strconv.FormatInt(v, 10) + ")" }
	for _, c := range cases {
		seed("FuzzParseHeader", c.name, "string("+strconv.Quote(c.m.HeaderValue)+")")
		if c.m.PendingHeaderValue != "" {
			seed("FuzzParseHeader", c.name+"-pending", "string("+strconv.Quote(c.m.PendingHeaderValue)+")")
		}
		if c.m.Layout == LayoutMultipart.String() {
			seed("FuzzParsePartHeader", c.name, bs(bytes.TrimRight(c.body[:partTagOffset], "\x00")), bs(c.body[partTagOffset:PartHeaderSize]))
		}
		if c.m.FormatVersion >= 2 {
			seed("FuzzDecodeMeta", c.name, bs([]byte(c.m.Meta)))
			if c.m.PendingMeta != "" {
				seed("FuzzDecodeMeta", c.name+"-pending", bs([]byte(c.m.PendingMeta)))
			}
		}
	}
	for _, c := range cases {
		if c.name == "v1-single-small" {
			n := int64(len(c.plain))
			seed("FuzzDecrypt", "whole", bs(c.body), i64(n), i64(0), i64(n))
			seed("FuzzDecrypt", "range", bs(c.body), i64(n), i64(10), i64(20))
		}
	}
}
