package s3wire

import (
	"testing"

	"github.com/s3seal/s3seal/envelope"
)

// TestStoredLimits: the largest single PUT and part s3seal accepts fit S3's
// 5 GiB limit once encrypted, and one byte more would not.
func TestStoredLimits(t *testing.T) {
	if c := envelope.CiphertextSize(MaxPlainSingle); c > MaxStored || envelope.CiphertextSize(MaxPlainSingle+1) <= MaxStored {
		t.Errorf("MaxPlainSingle %d: stored %d, next %d", MaxPlainSingle, c, envelope.CiphertextSize(MaxPlainSingle+1))
	}
	if envelope.PartCiphertextSize(MaxPlainPart) != MaxStored {
		t.Errorf("MaxPlainPart %d stores as %d", MaxPlainPart, envelope.PartCiphertextSize(MaxPlainPart))
	}
}
