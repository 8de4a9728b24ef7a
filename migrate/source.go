package migrate

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/objstore"
)

// Listed is one source object to migrate: its key and, when the source
// told, its stored size.
type Listed struct {
	Key  string
	Size int64
}

// ObjectSource lists the source keys of a run. Keys outside the source
// prefix are not migrated (they are reported as failed).
type ObjectSource interface {
	Objects(ctx context.Context) ([]Listed, error)
}

// Shard selects a deterministic share of the keys: those whose FNV-1a
// hash modulo N is K. The zero Shard keeps every key.
type Shard struct {
	K, N int
}

// ParseShard parses "K/N" (0 ≤ K < N).
func ParseShard(s string) (Shard, error) {
	k, n, ok := strings.Cut(s, "/")
	ki, err1 := strconv.Atoi(k)
	ni, err2 := strconv.Atoi(n)
	sh := Shard{K: ki, N: ni}
	if !ok || err1 != nil || err2 != nil || sh.valid() != nil || ni == 0 {
		return Shard{}, fmt.Errorf("shard %q: want K/N with 0 ≤ K < N", s)
	}
	return sh, nil
}

func (s Shard) valid() error {
	if s.N == 0 && s.K == 0 {
		return nil
	}
	if s.N < 1 || s.K < 0 || s.K >= s.N {
		return fmt.Errorf("shard %d/%d: want 0 ≤ K < N", s.K, s.N)
	}
	return nil
}

// Keeps reports whether key belongs to this shard.
func (s Shard) Keeps(key string) bool {
	if s.N <= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64()%uint64(s.N) == uint64(s.K)
}

// objects lists the run's source objects, in this shard.
func (j *job) objects(ctx context.Context) ([]Listed, error) {
	var all []Listed
	if j.cfg.Objects != nil {
		var err error
		if all, err = j.cfg.Objects.Objects(ctx); err != nil {
			return nil, err
		}
	} else {
		l := j.cfg.Src.Store.List(j.cfg.Src.Bucket, j.cfg.Src.Prefix)
		for {
			page, err := l.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			for _, o := range page {
				all = append(all, Listed{Key: o.Key, Size: o.Size})
			}
		}
	}
	out := all[:0]
	for _, o := range all {
		if j.cfg.Shard.Keeps(o.Key) {
			out = append(out, o)
		}
	}
	return out, nil
}

// KeyList is a plain list of source keys, one per line (blank lines and
// lines starting with # are skipped).
type KeyList struct {
	R io.Reader
}

// Objects implements ObjectSource.
func (k KeyList) Objects(context.Context) ([]Listed, error) {
	var out []Listed
	sc := bufio.NewScanner(k.R)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, Listed{Key: line})
	}
	return out, sc.Err()
}

// Inventory is an S3 Inventory report: its manifest.json and the CSV (or
// gzipped CSV) files it lists, read from a store (or a local directory
// through Open). Only the rows of Bucket are taken.
type Inventory struct {
	// Manifest is the manifest.json's contents.
	Manifest []byte
	// Open returns one data file, named by the manifest's files[].key.
	Open   func(ctx context.Context, key string) (io.ReadCloser, error)
	Bucket string
}

// inventoryManifest is the part of S3 Inventory's manifest.json used here.
type inventoryManifest struct {
	SourceBucket      string `json:"sourceBucket"`
	DestinationBucket string `json:"destinationBucket"`
	FileFormat        string `json:"fileFormat"`
	FileSchema        string `json:"fileSchema"`
	Files             []struct {
		Key  string `json:"key"`
		Size int64  `json:"size"`
	} `json:"files"`
}

// Objects implements ObjectSource.
func (inv Inventory) Objects(ctx context.Context) ([]Listed, error) {
	var m inventoryManifest
	if err := json.Unmarshal(inv.Manifest, &m); err != nil {
		return nil, fmt.Errorf("inventory manifest: %w", err)
	}
	if !strings.EqualFold(m.FileFormat, "CSV") {
		return nil, fmt.Errorf("inventory manifest: file format %q: only CSV inventories are supported", m.FileFormat)
	}
	if m.SourceBucket != "" && inv.Bucket != "" && m.SourceBucket != inv.Bucket {
		return nil, fmt.Errorf("inventory of bucket %q, migrating %q", m.SourceBucket, inv.Bucket)
	}
	col := map[string]int{}
	for i, f := range strings.Split(m.FileSchema, ",") {
		col[strings.TrimSpace(f)] = i
	}
	keyCol, ok := col["Key"]
	if !ok {
		return nil, fmt.Errorf("inventory manifest: file schema %q has no Key", m.FileSchema)
	}
	bucketCol, hasBucket := col["Bucket"]
	sizeCol, hasSize := col["Size"]
	latestCol, hasLatest := col["IsLatest"]
	deleteCol, hasDelete := col["IsDeleteMarker"]
	var out []Listed
	for _, f := range m.Files {
		rows, err := inv.readFile(ctx, f.Key)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			if keyCol >= len(row) {
				return nil, fmt.Errorf("inventory file %s: short row %q", f.Key, row)
			}
			if hasBucket && bucketCol < len(row) && inv.Bucket != "" && row[bucketCol] != inv.Bucket {
				continue
			}
			if hasLatest && latestCol < len(row) && row[latestCol] == "false" ||
				hasDelete && deleteCol < len(row) && row[deleteCol] == "true" {
				continue // older versions and delete markers: the current object only
			}
			// Inventory keys are URL-encoded (spaces as +).
			key, err := url.QueryUnescape(row[keyCol])
			if err != nil {
				return nil, fmt.Errorf("inventory file %s: key %q: %w", f.Key, row[keyCol], err)
			}
			o := Listed{Key: key}
			if hasSize && sizeCol < len(row) {
				o.Size, _ = strconv.ParseInt(row[sizeCol], 10, 64)
			}
			out = append(out, o)
		}
	}
	return out, nil
}

func (inv Inventory) readFile(ctx context.Context, key string) ([][]string, error) {
	rc, err := inv.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("inventory file %s: %w", key, err)
	}
	defer rc.Close()
	var r io.Reader = rc
	if strings.HasSuffix(key, ".gz") {
		gz, err := gzip.NewReader(rc)
		if err != nil {
			return nil, fmt.Errorf("inventory file %s: %w", key, err)
		}
		defer gz.Close()
		r = gz
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("inventory file %s: %w", key, err)
	}
	return rows, nil
}

// StoreInventory returns an Inventory whose manifest is the object
// s3://bucket/manifestKey of st, its data files objects of the same
// bucket (S3 Inventory writes both to its destination bucket).
func StoreInventory(ctx context.Context, st *objstore.Store, bucket, manifestKey, srcBucket string) (Inventory, error) {
	get := func(ctx context.Context, key string) (io.ReadCloser, error) {
		out, err := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return nil, err
		}
		return out.Body, nil
	}
	rc, err := get(ctx, manifestKey)
	if err != nil {
		return Inventory{}, fmt.Errorf("inventory manifest s3://%s/%s: %w", bucket, manifestKey, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return Inventory{}, err
	}
	if len(b) == 0 {
		return Inventory{}, errors.New("inventory manifest is empty")
	}
	return Inventory{Manifest: b, Open: get, Bucket: srcBucket}, nil
}
