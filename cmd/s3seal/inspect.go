package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/objstore"
	"github.com/s3seal/s3seal/kms"
)

// InspectCmd shows an object's envelope as the store holds it, without any
// key: everything it prints is what anyone who can read the store sees.
// With --open it also opens the header with the key, as decrypt does (the
// same KMS and keyring options, the same code), to show what the envelope
// seals about the body: a compressed object's plaintext size, and so its
// ratio, is only there.
type InspectCmd struct {
	Object string `arg:"" help:"The object, as s3://bucket/key."`
	JSON   bool   `name:"json" help:"Print JSON instead of text."`
	Open   bool   `name:"open" help:"Also open the object header with the key (the KMS, keyring and --rsa-private-key-file options decrypt takes; one KMS Decrypt) and show what it seals about the body: the plaintext size and, for a compressed object, the ratio, algorithm, block size and how many blocks are stored raw (its block index: one ranged read). Without --open inspect uses no key and prints only what anyone who can read the store sees; with it, the output also holds what only a key holder can know."`
	// Named explicitly, as decrypt's: serve has the same option.
	RSAPrivateKeyFile string `name:"rsa-private-key-file" env:"S3SEAL_RSA_PRIVATE_KEY_FILE" help:"With --open: PEM RSA private key of objects written with serve --write-only-key-file, as for decrypt (${env})."`

	UpstreamOptions `embed:"" envprefix:"S3SEAL_"`
	// The KMS and the keyring are used with --open only; without it the
	// data dir is only where the embedded store is read when there is no
	// --upstream.
	KMSOptions     `embed:"" envprefix:"S3SEAL_"`
	KeyringOptions `embed:"" envprefix:"S3SEAL_"`

	out io.Writer // nil: os.Stdout
}

// Inspection is what inspect reports (its --json form).
type Inspection struct {
	Object       string    `json:"object"`
	StoreETag    string    `json:"store_etag"`
	VersionID    string    `json:"version_id,omitempty"`
	LastModified time.Time `json:"last_modified"`
	StoredSize   int64     `json:"stored_size"`
	// Sealed is false for an object s3seal did not write.
	Sealed        bool   `json:"sealed"`
	FormatVersion int    `json:"format_version,omitempty"`
	Layout        string `json:"layout,omitempty"`
	// Flags names the version 3 flags of the header (compressed, ...).
	Flags         []string `json:"flags,omitempty"`
	PlaintextSize *int64   `json:"plaintext_size,omitempty"`
	// PlaintextSizeSealed is true for a compressed object inspected
	// without --open: its plaintext size is only in the sealed metadata.
	PlaintextSizeSealed bool `json:"plaintext_size_sealed,omitempty"`
	// Opened is true when --open opened the header with the key: then
	// PlaintextSize is the sealed size, checked against the stored one,
	// and Compression is read from the sealed metadata and block index.
	Opened      bool                  `json:"opened,omitempty"`
	Compression *InspectedCompression `json:"compression,omitempty"`
	// KMSKey is the key that wrapped the object header's data key; region
	// and account are read from it when it is an ARN.
	KMSKey          string `json:"kms_key,omitempty"`
	KMSRegion       string `json:"kms_region,omitempty"`
	KMSAccount      string `json:"kms_account,omitempty"`
	WrappedKeyBytes int    `json:"wrapped_key_bytes,omitempty"`
	// KeyWrapping says how the data key was wrapped when it was not by
	// the KMS itself: "RSAES_OAEP_SHA_256" for a write-only key (FORMAT.md
	// 12.3), whose readers need KMS Decrypt with the RSA key.
	KeyWrapping string `json:"key_wrapping,omitempty"`
	// HeaderValueBytes is the length of the x-amz-meta-s3seal value (S3
	// allows 2048 bytes of user metadata); SealedMetadataBytes that of the
	// sealed metadata blob inside it.
	HeaderValueBytes    int      `json:"header_value_bytes,omitempty"`
	SealedMetadataBytes int      `json:"sealed_metadata_bytes,omitempty"`
	SealedFields        []string `json:"sealed_fields,omitempty"`
	// InClear lists what the store keeps readable besides the envelope.
	InClear  map[string]string `json:"in_clear,omitempty"`
	Parts    []InspectedPart   `json:"parts,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
}

// InspectedCompression is what --open shows of a compressed body.
type InspectedCompression struct {
	Algorithm string `json:"algorithm"`
	BlockSize int    `json:"block_size"`
	// Ratio is stored / plaintext bytes (the block headers, tags and index
	// included, as decrypt --info computes it); SavingPercent is
	// 100·(1 − Ratio).
	Ratio         float64 `json:"ratio"`
	SavingPercent float64 `json:"saving_percent"`
	// Blocks is the number of blocks; RawBlocks of them did not shrink
	// and are stored as they are.
	Blocks           int `json:"blocks"`
	CompressedBlocks int `json:"compressed_blocks"`
	RawBlocks        int `json:"raw_blocks"`
}

// InspectedPart is one part header of a multipart object.
type InspectedPart struct {
	Number        int    `json:"number"`
	FormatVersion int    `json:"format_version"`
	PlaintextSize int64  `json:"plaintext_size"`
	StoredSize    int64  `json:"stored_size"`
	StoredOffset  int64  `json:"stored_offset"`
	SegmentSize   int    `json:"segment_size"`
	KMSKey        string `json:"kms_key"`
	KMSRegion     string `json:"kms_region,omitempty"`
	// A compressed part's (FORMAT.md 12.2.3): its algorithm, block size and
	// stored size over plaintext size. A part's plaintext size is in its
	// header in clear, so the ratio needs no key.
	Compression string   `json:"compression,omitempty"`
	BlockSize   int      `json:"block_size,omitempty"`
	Ratio       *float64 `json:"ratio,omitempty"`
}

// sealedFields says what a header of each version seals (FORMAT.md 6 and
// 11.4): which of them an object has is itself sealed.
var sealedFields = map[int][]string{
	1: {"object key (OEK)", "plaintext size", "user metadata (x-amz-meta-*)", "plaintext MD5", "checksums", "origin path of copied parts"},
	2: {"object key (OEK)", "plaintext size", "user metadata (x-amz-meta-*)", "content headers (Content-Type, ...)", "plaintext MD5", "checksums",
		"origin path of copied parts", "upload identity", "part manifest", "migration source"},
	3: {"object key (OEK)", "plaintext size", "user metadata (x-amz-meta-*)", "content headers (Content-Type, ...)", "plaintext MD5", "checksums",
		"origin path of copied parts", "upload identity", "part manifest", "migration source", "compression algorithm and block size"},
}

func (c *InspectCmd) Run() error {
	bucket, key, err := parseObjectURL(c.Object)
	if err != nil {
		return err
	}
	st, closeStore, err := c.storeOrEmbedded(c.DataDir)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx := context.Background()
	var keys func(*envelope.Header) (kms.Client, error)
	if c.Open {
		keys = func(h *envelope.Header) (kms.Client, error) {
			return headerKMS(ctx, &c.KMSOptions, &c.KeyringOptions, c.RSAPrivateKeyFile, h)
		}
	}
	in, err := inspect(ctx, st, bucket, key, keys)
	if err != nil {
		return err
	}
	w := c.out
	if w == nil {
		w = os.Stdout
	}
	if c.JSON {
		b, _ := json.MarshalIndent(in, "", "  ")
		_, err := fmt.Fprintln(w, string(b))
		return err
	}
	return in.writeText(w)
}

// parseObjectURL splits s3://bucket/key.
func parseObjectURL(u string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	bucket, key, _ = strings.Cut(rest, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", fmt.Errorf("%q: want s3://bucket/key", u)
	}
	return bucket, key, nil
}

// inspect reads what the store holds of bucket/key. With keys (--open) it
// also opens the header with the KMS keys returns for it.
func inspect(ctx context.Context, st *objstore.Store, bucket, key string, keys func(*envelope.Header) (kms.Client, error)) (*Inspection, error) {
	o, err := st.Head(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	in := &Inspection{Object: "s3://" + bucket + "/" + key, StoreETag: o.ETag, VersionID: o.VersionID,
		LastModified: o.Modified, StoredSize: o.Size, Sealed: o.Sealed()}
	in.InClear = map[string]string{}
	for k, v := range o.Content {
		in.InClear[k] = v
	}
	for k, v := range o.User {
		in.InClear["x-amz-meta-"+k] = v
	}
	if !o.Sealed() {
		in.Warnings = append(in.Warnings, "no "+envelope.MetadataKey+" metadata: this object was not written by s3seal and is stored in clear")
		return in, nil
	}
	h, err := envelope.ParseHeader(o.HeaderValue)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Object, err)
	}
	ki := h.KeyInfo()
	in.FormatVersion, in.Layout = h.Version(), h.Layout().String()
	in.KMSKey, in.WrappedKeyBytes = ki.KeyID, len(ki.Wrapped)
	if ki.Flags&envelope.FlagAsymmetricWrap != 0 {
		in.KeyWrapping = kms.AlgRSAESOAEPSHA256
	}
	if a, ok := kms.ParseARN(ki.KeyID); ok {
		in.KMSRegion, in.KMSAccount = a.Region, a.Account
	}
	in.HeaderValueBytes, in.SealedMetadataBytes = len(o.HeaderValue), h.MetaSize()
	in.SealedFields = sealedFields[h.Version()]
	if f := h.Flags(); f&envelope.FlagCompressed != 0 {
		in.Flags = append(in.Flags, "compressed")
	}
	if f := h.Flags(); f&envelope.FlagAsymmetricWrap != 0 {
		in.Flags = append(in.Flags, "asymmetric-wrap")
	}
	if h.Version() >= 2 {
		for k, v := range o.Content {
			if k == "Content-Type" && defaultContentType(v) {
				continue // what the store answers for an object stored without one
			}
			in.Warnings = append(in.Warnings, fmt.Sprintf("the store holds a %s header in clear; a version 2 reader serves the sealed one", k))
		}
	}
	for k := range o.User {
		in.Warnings = append(in.Warnings, fmt.Sprintf("user metadata x-amz-meta-%s is stored in clear, outside the envelope (s3seal never writes one)", k))
	}
	parts := o.Parts()
	switch {
	case h.Flags()&envelope.FlagCompressed != 0 && parts == 0:
		// The stored size says nothing exact of a compressed body.
		in.PlaintextSizeSealed = true
	case h.Layout() == envelope.LayoutSingle && parts == 0:
		if p, err := envelope.PlaintextSize(o.Size); err == nil {
			in.PlaintextSize = &p
		} else {
			in.Warnings = append(in.Warnings, err.Error())
		}
	case h.Layout() == envelope.LayoutMultipart && parts > 0:
		pm, hdrs, err := st.PartHeaders(ctx, o)
		if err != nil {
			in.Warnings = append(in.Warnings, "part headers: "+err.Error())
			break
		}
		p := pm.Size()
		in.PlaintextSize = &p
		for i, ph := range hdrs {
			_, _, _, off := pm.Part(i)
			pk := ph.KeyInfo()
			ip := InspectedPart{Number: ph.PartNumber(), FormatVersion: ph.Version(), PlaintextSize: ph.PlainLen(),
				StoredSize: ph.CiphertextSize(), StoredOffset: off, SegmentSize: ph.SegmentSize(), KMSKey: pk.KeyID}
			if a, ok := kms.ParseARN(pk.KeyID); ok {
				ip.KMSRegion = a.Region
			}
			if c := ph.Compression(); c != nil {
				r := float64(ip.StoredSize) / float64(max(ip.PlaintextSize, 1))
				ip.Compression, ip.BlockSize, ip.Ratio = string(c.Algorithm), c.BlockSize, &r
			}
			in.Parts = append(in.Parts, ip)
		}
	default:
		in.Warnings = append(in.Warnings, fmt.Sprintf("a %v header on an object whose store ETag is %s: readers refuse it", h.Layout(), o.ETag))
	}
	if keys == nil {
		return in, nil
	}
	if err := inspectOpened(ctx, st, o, h, keys, in); err != nil {
		return nil, fmt.Errorf("%s: %w", in.Object, err)
	}
	return in, nil
}

// inspectOpened opens o's header with the key (inspect --open) and adds
// what it seals about the body to in: the plaintext size, checked against
// the stored size as every reader checks it, and for a compressed object
// its parameters and block index (one ranged read of the index, which is
// authenticated before anything of it is shown).
func inspectOpened(ctx context.Context, st *objstore.Store, o *objstore.Object, h *envelope.Header, keys func(*envelope.Header) (kms.Client, error), in *Inspection) error {
	backend, err := keys(h)
	if err != nil {
		return err
	}
	obj, meta, err := openHeader(ctx, backend, h, o.Bucket, o.Key)
	if err != nil {
		return err
	}
	defer obj.Close()
	size, err := obj.PlainSize(meta, o.Size, o.ETag)
	if err != nil {
		return err
	}
	in.Opened, in.PlaintextSize, in.PlaintextSizeSealed = true, &size, false
	z := obj.Compression()
	if z == nil || o.Parts() > 0 {
		return nil
	}
	off, n, err := obj.IndexRange(o.Size)
	if err != nil {
		return err
	}
	rc, err := st.Range(ctx, o, off, off+n)
	if err != nil {
		return fmt.Errorf("block index: %w", err)
	}
	defer rc.Close()
	sealed := make([]byte, n) // 4 bytes a block: 80 KiB at most (FORMAT.md 12.2)
	if _, err := io.ReadFull(rc, sealed); err != nil {
		return fmt.Errorf("block index: %w", err)
	}
	idx, err := obj.OpenIndex(sealed, o.Size)
	if err != nil {
		return err
	}
	ratio := float64(o.Size) / float64(max(size, 1))
	in.Compression = &InspectedCompression{Algorithm: string(z.Algorithm), BlockSize: z.BlockSize, Ratio: ratio,
		SavingPercent: 100 * (1 - ratio), Blocks: idx.Blocks(), RawBlocks: idx.RawBlocks(), CompressedBlocks: idx.Blocks() - idx.RawBlocks()}
	return nil
}

// defaultContentType reports whether v is what stores answer for an object
// stored without a Content-Type.
func defaultContentType(v string) bool {
	return v == "application/octet-stream" || v == "binary/octet-stream"
}

func (in *Inspection) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("object", in.Object)
	row("store etag", in.StoreETag)
	if in.VersionID != "" {
		row("version id", in.VersionID)
	}
	row("last modified", in.LastModified.UTC().Format(time.RFC3339))
	row("stored size", in.StoredSize)
	row("sealed", in.Sealed)
	if in.Sealed {
		row("format version", in.FormatVersion)
		row("layout", in.Layout)
		if len(in.Flags) > 0 {
			row("flags", strings.Join(in.Flags, ", "))
		}
		switch {
		case in.PlaintextSize != nil && in.Opened:
			row("plaintext size", fmt.Sprintf("%d (sealed; read with the key)", *in.PlaintextSize))
		case in.PlaintextSize != nil:
			row("plaintext size", *in.PlaintextSize)
		case in.PlaintextSizeSealed:
			row("plaintext size", "sealed (compressed body: the stored size does not tell it); inspect --open shows it and the ratio")
		}
		if z := in.Compression; z != nil {
			row("compression", fmt.Sprintf("%s, blocks of %d bytes", z.Algorithm, z.BlockSize))
			row("stored / plaintext", fmt.Sprintf("%.4f (saves %.1f%%)", z.Ratio, z.SavingPercent))
			row("blocks", fmt.Sprintf("%d: %d compressed, %d stored raw", z.Blocks, z.CompressedBlocks, z.RawBlocks))
		}
		row("kms key", in.KMSKey)
		if in.KMSRegion != "" {
			row("kms region", in.KMSRegion)
			row("kms account", in.KMSAccount)
		}
		row("wrapped data key", fmt.Sprintf("%d bytes", in.WrappedKeyBytes))
		if in.KeyWrapping != "" {
			row("key wrapping", in.KeyWrapping+" (RSA public key: a write-only writer)")
		}
		row("header value", fmt.Sprintf("%d of %d bytes", in.HeaderValueBytes, envelope.MaxHeaderValueLen))
		row("sealed metadata", fmt.Sprintf("%d bytes", in.SealedMetadataBytes))
		row("sealed (may hold)", strings.Join(in.SealedFields, ", "))
	}
	for k, v := range in.InClear {
		row("in clear: "+k, v)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(in.Parts) > 0 {
		fmt.Fprintf(w, "\n%d parts:\n", len(in.Parts))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "part\tversion\tplaintext\tstored\toffset\tsegment\tkms key\t")
		for _, p := range in.Parts {
			seg := strconv.Itoa(p.SegmentSize)
			if p.Compression != "" {
				// A compressed part has blocks, not segments.
				seg = fmt.Sprintf("%s, %d-byte blocks, ratio %.3f", p.Compression, p.BlockSize, *p.Ratio)
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", p.Number, p.FormatVersion, p.PlaintextSize, p.StoredSize, p.StoredOffset, seg, p.KMSKey)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, warn := range in.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	return nil
}
