package envelope

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCorpora prints the README's corpora table: plaintext bytes against
// stored bytes (body and header value) of real files, uncompressed
// (version 2) and compressed with S2 and zstd at the default block size,
// with the write time of each. Run it with
//
//	S3SEAL_CORPORA=file1,file2,... go test ./envelope -run TestCorpora -v
//
// It is skipped otherwise.
func TestCorpora(t *testing.T) {
	files := os.Getenv("S3SEAL_CORPORA")
	if files == "" {
		t.Skip("S3SEAL_CORPORA not set")
	}
	dek := newDEK(t)
	fmt.Println("| corpus | plaintext | uncompressed (v2) | S2 | zstd |")
	fmt.Println("|---|---:|---:|---:|---:|")
	for _, path := range strings.Split(files, ",") {
		plain, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(len(plain))
		row := fmt.Sprintf("| %s | %d | %d (%.3f) |", filepath.Base(path), n, CiphertextSize(n), float64(CiphertextSize(n))/float64(n))
		for _, alg := range []Algorithm{AlgS2, AlgZstd} {
			comp := Compression{Algorithm: alg, BlockSize: DefaultBlockSize}
			o, err := Config{Flags: FlagCompressed}.NewObject(dek, testKI, "b", "k", LayoutSingle, (&Meta{Size: n, Compression: &comp}).Encode())
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			stored, err := io.Copy(io.Discard, o.EncryptCompressedReader(bytes.NewReader(plain)))
			took := time.Since(start)
			o.Close()
			if err != nil {
				t.Fatal(err)
			}
			saving, _ := Saving(alg, plain[:min(n, DefaultBlockSize)])
			row += fmt.Sprintf(" %d (%.3f; %.0f MB/s; first block saves %.0f%%) |", stored, float64(stored)/float64(n), float64(n)/took.Seconds()/1e6, 100*saving)
		}
		fmt.Println(row)
	}
}
