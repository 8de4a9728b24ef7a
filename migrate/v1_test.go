package migrate_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/keyring"
	"github.com/s3seal/s3seal/migrate"
)

// goldenKMS unwraps the fake wrapped data key of a golden object into its
// test-only data key, and nothing else.
type goldenKMS struct {
	kms.Client // nil: any other call panics
	keyID      string
	wrapped    []byte
	dek        []byte
}

func (g *goldenKMS) Decrypt(_ context.Context, keyID string, wrapped []byte, encCtx map[string]string) ([]byte, error) {
	if keyID != g.keyID || !bytes.Equal(wrapped, g.wrapped) || encCtx["s3seal:bucket"] != "golden-bucket" {
		return nil, &kms.Error{Code: kms.CodeInvalidCiphertext, Message: "not the golden key"}
	}
	return bytes.Clone(g.dek), nil
}

// A version 1 object (the golden v1-single-empty, with its test-only key)
// arrives as a version 2 object: decrypted and encrypted anew, since its
// version 1 keys cannot be resealed into a version 2 header.
func TestVersion1Source(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "envelope", "v1-single-empty.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Bucket      string `json:"bucket"`
		Key         string `json:"key"`
		KeyID       string `json:"key_id"`
		DEK         string `json:"test_only_dek_hex"`
		Wrapped     string `json:"fake_wrapped_dek_hex"`
		HeaderValue string `json:"header_value"`
		BodyFile    string `json:"body_file"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join("..", "testdata", "envelope", g.BodyFile))
	if err != nil {
		t.Fatal(err)
	}
	dek, _ := hex.DecodeString(g.DEK)
	wrapped, _ := hex.DecodeString(g.Wrapped)
	src, dst := &regA.store.Upstream, &regB.store.Upstream
	createBucket(t, src, g.Bucket)
	createBucket(t, dst, "from-v1")
	if _, err := src.S3Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &g.Bucket, Key: &g.Key,
		Body: bytes.NewReader(body), Metadata: map[string]string{"s3seal": g.HeaderValue}, ContentType: aws.String("text/csv")}); err != nil {
		t.Fatal(err)
	}
	dir, kr := newKeyring(t)
	rep, err := migrate.Run(context.Background(), migrate.Config{
		Src:      migrate.Side{Store: store(src), Bucket: g.Bucket, KMS: &goldenKMS{keyID: g.KeyID, wrapped: wrapped, dek: dek}},
		Dst:      migrate.Side{Store: store(dst), Bucket: "from-v1", KMS: kr},
		DstKeyID: keyring.DefaultAlias, Verify: migrate.VerifyFull,
	})
	report(t, rep, err, 1, 0, 0)
	if rep.Objects[0].Mode != migrate.ModeReencrypt {
		t.Errorf("mode %s", rep.Objects[0].Mode)
	}
	head, err := dst.S3Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("from-v1"), Key: &g.Key})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := envelope.ParseHeader(head.Metadata["s3seal"]); err != nil || h.Version() != 2 {
		t.Fatalf("destination header: %v", err)
	}
	// The content type the store kept in clear for the version 1 object
	// is sealed at the destination.
	check(t, keyringProxy(t, dst, dir).S3Client(), "from-v1", "", []object{{key: g.Key, contentType: "text/csv"}})
}
