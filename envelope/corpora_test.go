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

// TestCorporaMultipart prints the README's multipart corpora table: the
// stored size of each file uploaded in parts of 8 MiB (the aws cli's
// default) and 64 MiB, with S2 and zstd, under the proxy's rules for
// compressed parts (FORMAT.md 12.2.3): the adaptive check on each part's
// first block (10%), parts of 5 MiB − 20 KiB to 5 MiB stored raw, and
// every compressed part that would be 5 MiB or more uncompressed padded
// to 5 MiB. Beside it the single PUT of the same file, for comparison.
// Run it with
//
//	S3SEAL_CORPORA=file1,file2,... go test ./envelope -run TestCorporaMultipart -v
func TestCorporaMultipart(t *testing.T) {
	files := os.Getenv("S3SEAL_CORPORA")
	if files == "" {
		t.Skip("S3SEAL_CORPORA not set")
	}
	upload := must(NewUploadID())
	// storedParts is the stored size of plain uploaded in parts of
	// partSize, compressed with alg where the proxy would.
	storedParts := func(plain []byte, partSize int, alg Algorithm) int64 {
		var total int64
		for off := 0; off < len(plain) || off == 0; off += partSize {
			p := plain[off:min(off+partSize, len(plain))]
			P := int64(len(p))
			saving, _ := Saving(alg, p[:min(len(p), DefaultBlockSize)])
			// The proxy's rule (proxy.compressPart) and its adaptive check.
			if P == 0 || P+PartOverhead >= MinStoredPartSize && P <= MinStoredPartSize || saving < 0.10 {
				total += PartCiphertextSize(P)
			} else {
				part, err := Config{}.NewCompressedPart(instDEK[0], instKI[0], "b", "k", upload, 1+off/partSize, P, Compression{alg, DefaultBlockSize})
				if err != nil {
					t.Fatal(err)
				}
				ph, err := part.EncryptCompressed(bytes.NewReader(p), io.Discard)
				part.Close()
				if err != nil {
					t.Fatal(err)
				}
				total += ph.CiphertextSize()
			}
			if len(plain) == 0 {
				break
			}
		}
		return total
	}
	fmt.Println("| corpus | plaintext | parts | uncompressed (v2) | S2 multipart | S2 single PUT | zstd multipart | zstd single PUT |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, path := range strings.Split(files, ",") {
		plain, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(len(plain))
		single := map[Algorithm]int64{}
		for _, alg := range []Algorithm{AlgS2, AlgZstd} {
			comp := Compression{Algorithm: alg, BlockSize: DefaultBlockSize}
			o, err := Config{Flags: FlagCompressed}.NewObject(newDEK(t), testKI, "b", "k", LayoutSingle, (&Meta{Size: n, Compression: &comp}).Encode())
			if err != nil {
				t.Fatal(err)
			}
			single[alg], err = io.Copy(io.Discard, o.EncryptCompressedReader(bytes.NewReader(plain)))
			o.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, ps := range []int{8 << 20, 64 << 20} {
			parts := (len(plain) + ps - 1) / ps
			raw := n + int64(parts)*PartOverhead
			row := fmt.Sprintf("| %s | %d | %d × %d MiB | %d (%.3f) |", filepath.Base(path), n, parts, ps>>20, raw, float64(raw)/float64(n))
			for _, alg := range []Algorithm{AlgS2, AlgZstd} {
				s := storedParts(plain, ps, alg)
				row += fmt.Sprintf(" %d (%.3f) | %d (%.3f) |", s, float64(s)/float64(n), single[alg], float64(single[alg])/float64(n))
			}
			fmt.Println(row)
		}
	}
}
