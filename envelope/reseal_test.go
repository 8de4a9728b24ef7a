package envelope

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// resealUpload re-wraps every part of u for (bucket, key) under dek/ki, as
// s3seal migrate does: the new header, then the old part's bytes after its
// header. It returns the new stored parts and their headers.
func resealUpload(t *testing.T, u *mpUpload, dek []byte, ki KeyInfo, bucket, key string) ([][]byte, []*PartHeader) {
	t.Helper()
	var parts [][]byte
	var hdrs []*PartHeader
	for _, stored := range u.parts {
		ph, err := ParsePartHeader(stored)
		if err != nil {
			t.Fatal(err)
		}
		p, err := OpenPart(ph, instMap[ph.KeyInfo().KeyID], u.bucket, u.key, u.upload)
		if err != nil {
			t.Fatal(err)
		}
		nph, err := p.Reseal(dek, ki, bucket, key)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, append(nph.Bytes(), stored[PartHeaderSize:]...))
		hdrs = append(hdrs, nph)
	}
	return parts, hdrs
}

// A resealed part is a normal part header of its version: it decrypts bit
// for bit under the new data key and path, and no longer under the old.
func TestResealPart(t *testing.T) {
	newDEK := bytes.Repeat([]byte{0xc}, KeySize)
	newKI := KeyInfo{KeyID: "arn:aws:kms:eu-central-1:444455556666:key/dst", Wrapped: bytes.Repeat([]byte{0xcd}, 184)}
	const dstBucket, dstKey = "dst-bucket", "moved/there"
	for _, tc := range []struct {
		name    string
		version byte
		nums    []int
		sizes   []int
	}{
		{"v2 sizes across segment boundaries", 2, []int{1, 2, 3, 7}, []int{S + 1, S - 1, 1, 0}},
		{"v2 one part", 2, []int{1}, []int{3*S + 5}},
		{"v2 sparse part numbers", 2, []int{2, 9, 10000}, []int{S, 2 * S, 17}},
		{"v1 parts", 1, []int{1, 2}, []int{S + 7, 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpload(t, tc.version, "src-bucket", "src/key", tc.nums, tc.sizes, 7)
			parts, hdrs := resealUpload(t, u, newDEK, newKI, dstBucket, dstKey)
			body := slices.Concat(parts...)
			for i, nph := range hdrs {
				old, _ := ParsePartHeader(u.parts[i])
				re, err := ParsePartHeader(nph.Bytes())
				if err != nil || !bytes.Equal(re.Bytes(), nph.Bytes()) {
					t.Fatalf("part %d: resealed header does not parse back: %v", i, err)
				}
				if re.Version() != old.Version() || re.PartNumber() != old.PartNumber() || re.PlainLen() != old.PlainLen() ||
					re.SegmentSize() != old.SegmentSize() || re.KeyInfo().KeyID != newKI.KeyID || !bytes.Equal(re.commitment, old.commitment) {
					t.Fatalf("part %d: resealed header %+v, old %+v", i, re, old)
				}
			}
			// The destination's manifest is over the new headers.
			pm, err := PartMapOf(hdrs)
			if err != nil {
				t.Fatal(err)
			}
			mf, err := pm.Manifest(u.upload)
			if err != nil {
				t.Fatal(err)
			}
			meta := &Meta{Size: -1, Upload: u.upload, Manifest: mf}
			open := openWith(map[string][]byte{newKI.KeyID: newDEK}, dstBucket, dstKey, u.upload)
			version := Version
			if tc.version < 2 {
				version = 1
			}
			pm2, err := ReadPartMap(len(parts), int64(len(body)), bodyFetcher(body))
			if err == nil {
				err = pm2.Verify(version, meta)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := readMultipart(body, pm2, 0, pm2.Size(), open, 1<<20)
			if err != nil || !bytes.Equal(got, u.plain()) {
				t.Fatalf("resealed object: %v (%d bytes, want %d)", err, len(got), len(u.plain()))
			}
			if tc.version >= 2 {
				// The source's manifest does not describe the new parts.
				src := u.finalize(t)
				if err := pm2.Verify(2, src); !errors.Is(err, ErrManifest) {
					t.Errorf("new parts against the old manifest: %v", err)
				}
			}

			// The old binding no longer opens a resealed header, nor the
			// new one an old header.
			nph := hdrs[0]
			old, _ := ParsePartHeader(u.parts[0])
			oldDEK := instMap[old.KeyInfo().KeyID]
			other := bytes.Clone(u.upload)
			if other != nil {
				other[0] ^= 1
			}
			for _, c := range []struct {
				name        string
				ph          *PartHeader
				dek         []byte
				bucket, key string
				upload      []byte
			}{
				{"new header, old data key and path", nph, oldDEK, u.bucket, u.key, u.upload},
				{"new header, old path", nph, newDEK, u.bucket, u.key, u.upload},
				{"new header, old data key", nph, oldDEK, dstBucket, dstKey, u.upload},
				{"old header at the new path", old, newDEK, dstBucket, dstKey, u.upload},
				{"old header, new data key at the old path", old, newDEK, u.bucket, u.key, u.upload},
			} {
				if _, err := OpenPart(c.ph, c.dek, c.bucket, c.key, c.upload); !errors.Is(err, ErrAuth) {
					t.Errorf("%s: %v, want ErrAuth", c.name, err)
				}
			}
			if tc.version >= 2 {
				if _, err := OpenPart(nph, newDEK, dstBucket, dstKey, other); !errors.Is(err, ErrAuth) {
					t.Errorf("new header, another upload: %v, want ErrAuth", err)
				}
			}
		})
	}
}

func TestResealPartErrors(t *testing.T) {
	u := newUpload(t, 2, "b", "k", []int{1}, []int{10}, 3)
	ph, _ := ParsePartHeader(u.parts[0])
	p, err := OpenPart(ph, instDEK[0], "b", "k", u.upload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Reseal(instDEK[1][:16], instKI[1], "b2", "k2"); !errors.Is(err, ErrKeySize) {
		t.Errorf("short data key: %v", err)
	}
	big := KeyInfo{KeyID: strings.Repeat("k", 3000), Wrapped: make([]byte, 1000)}
	if _, err := p.Reseal(instDEK[1], big, "b2", "k2"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("key info too large for the header: %v", err)
	}
	// Deterministic with a fixed random source: same bytes twice.
	a, err := Config{Rand: bytes.NewReader(make([]byte, 64))}.ResealPart(p, instDEK[1], instKI[1], "b2", "k2")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Config{Rand: bytes.NewReader(make([]byte, 64))}.ResealPart(p, instDEK[1], instKI[1], "b2", "k2")
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("ResealPart is not a function of its randomness")
	}
	p.Close()
	if _, err := p.Reseal(instDEK[1], instKI[1], "b2", "k2"); !errors.Is(err, ErrClosed) {
		t.Errorf("closed part: %v", err)
	}
}
