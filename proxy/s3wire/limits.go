package s3wire

import "github.com/s3seal/s3seal/envelope"

// MaxStored is S3's limit on one PUT and one part.
const MaxStored int64 = 5 << 30

// MaxPlainSingle is the largest plaintext a single PUT of at most
// MaxStored stored bytes holds (the ciphertext adds a tag per segment).
var MaxPlainSingle = func() int64 {
	p := MaxStored - envelope.TagSize*((MaxStored+envelope.SegmentSize+envelope.TagSize-1)/(envelope.SegmentSize+envelope.TagSize))
	for envelope.CiphertextSize(p+1) <= MaxStored {
		p++
	}
	return p
}()

// MaxPlainPart is the largest plaintext of one part: S3 stores parts of at
// most 5 GiB, and a part's ciphertext is envelope.PartOverhead larger.
const MaxPlainPart = MaxStored - envelope.PartOverhead

// MaxSmallBody bounds request bodies that are configuration rather than
// object data (DeleteObjects lists, bucket policies, tagging, ...), which
// are read whole so their integrity can be checked before anything is
// sent, and the store's small answers (copy results, upload ids).
const MaxSmallBody = 4 << 20

// MaxListBody bounds a listing response; S3 returns at most 1,000 entries.
const MaxListBody = 32 << 20
