package envelope

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
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

// BenchmarkLevels: stored/plaintext ratio and write throughput (compress
// and seal, one core) of every level of S2 and zstd, and of an
// uncompressed body for reference, on the corpora of TestCorpora, in one
// run: the README's levels table. The corpora are the files of
// S3SEAL_CORPORA, or else a tarball of $(go env GOMODCACHE)/github.com/aws
// made here (skipped if absent) and 64 MiB of generated JSON-lines logs.
//
//	go test ./envelope -run '^$' -bench BenchmarkLevels -benchtime 2x
func BenchmarkLevels(b *testing.B) {
	type corpus struct {
		name  string
		plain []byte
	}
	var corpora []corpus
	if files := os.Getenv("S3SEAL_CORPORA"); files != "" {
		for _, path := range strings.Split(files, ",") {
			plain, err := os.ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			corpora = append(corpora, corpus{filepath.Base(path), plain})
		}
	} else {
		if tb, err := tarTree(filepath.Join(goModCache(b), "github.com", "aws")); err == nil {
			corpora = append(corpora, corpus{"gomod-aws.tar", tb})
		} else {
			b.Logf("no Go module tarball: %v", err)
		}
		corpora = append(corpora, corpus{"logs.jsonl", compressible(1, 64<<20)})
	}
	dek := bytes.Repeat([]byte{7}, KeySize)
	for _, c := range corpora {
		n := int64(len(c.plain))
		b.Run(fmt.Sprintf("%s/%d/uncompressed", c.name, n), func(b *testing.B) {
			b.SetBytes(n)
			for b.Loop() {
				o, err := NewObject(dek, testKI, "b", "k", LayoutSingle, (&Meta{Size: n}).Encode())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, o.EncryptReader(bytes.NewReader(c.plain), n)); err != nil {
					b.Fatal(err)
				}
				o.Close()
			}
			b.ReportMetric(float64(CiphertextSize(n))/float64(n), "stored/plain")
		})
		for _, alg := range []Algorithm{AlgS2, AlgZstd} {
			for _, l := range Levels(alg) {
				comp := Compression{Algorithm: alg, BlockSize: DefaultBlockSize}
				meta := (&Meta{Size: n, Compression: &comp}).Encode()
				b.Run(fmt.Sprintf("%s/%d/%s/%s", c.name, n, alg, l), func(b *testing.B) {
					b.SetBytes(n)
					var stored int64
					for b.Loop() {
						o, err := Config{Flags: FlagCompressed, Level: l}.NewObject(dek, testKI, "b", "k", LayoutSingle, meta)
						if err != nil {
							b.Fatal(err)
						}
						if stored, err = io.Copy(io.Discard, o.EncryptCompressedReader(bytes.NewReader(c.plain))); err != nil {
							b.Fatal(err)
						}
						o.Close()
					}
					b.ReportMetric(float64(stored)/float64(n), "stored/plain")
				})
			}
		}
	}
}

func goModCache(b *testing.B) string {
	if d := os.Getenv("GOMODCACHE"); d != "" {
		return d
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		b.Skip("go env GOMODCACHE:", err)
	}
	return strings.TrimSpace(string(out))
}

// tarTree is a tar archive of the regular files under dir, in walk order.
func tarTree(dir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name, _ = filepath.Rel(dir, path)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
