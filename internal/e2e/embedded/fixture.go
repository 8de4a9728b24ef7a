package embedded

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// FixtureBucket is the bucket of the upgrade fixture (testdata/embedstore-gofakes3).
const FixtureBucket = "legacy"

// FixtureObject is one object the fixture generator wrote through s3seal
// on the gofakes3-based embedded store.
type FixtureObject struct {
	Key         string
	Size        int
	Parts       []int // plaintext part sizes of a multipart upload; nil for a single PUT
	ContentType string
	Meta        map[string]string
	CopyOf      string // written with CopyObject from this key
}

// FixtureObjects are the fixture's objects: single and multipart, empty,
// nested, a folder marker and a key with a "." segment (which the old store
// wrote at a normalized path), a copy, and user metadata.
var FixtureObjects = []FixtureObject{
	{Key: "hello.txt", Size: 13, ContentType: "text/plain", Meta: map[string]string{"color": "blue"}},
	{Key: "empty", Size: 0},
	{Key: "dir/nested/file.bin", Size: 200000},
	{Key: "multipart.bin", Size: 70000 + 70000 + 10, Parts: []int{70000, 70000, 10}, ContentType: "application/x-test"},
	{Key: "photos/", Size: 0},
	{Key: "a/./b.txt", Size: 4097},
	{Key: "under_score/x_y", Size: 65537},
	{Key: "copy-of-hello.txt", Size: 13, ContentType: "text/plain", Meta: map[string]string{"color": "blue"}, CopyOf: "hello.txt"},
}

// FixturePlaintext is the content of key, size bytes derived from its name
// (a copy has its source's content).
func FixturePlaintext(o FixtureObject) []byte {
	name := o.Key
	if o.CopyOf != "" {
		name = o.CopyOf
	}
	out := make([]byte, 0, o.Size+32)
	var ctr [8]byte
	for i := uint64(0); len(out) < o.Size; i++ {
		binary.BigEndian.PutUint64(ctr[:], i)
		h := sha256.Sum256(append([]byte(fmt.Sprintf("s3seal fixture %s ", name)), ctr[:]...))
		out = append(out, h[:]...)
	}
	return out[:o.Size]
}
