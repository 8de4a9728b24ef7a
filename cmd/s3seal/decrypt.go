package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/kms"
	"github.com/s3seal/s3seal/kms/rsafile"
)

// DecryptCmd reads an object straight from the store and decrypts it with
// the KMS, with no proxy running: what FORMAT.md describes is all it needs,
// so data written through s3seal is never locked in.
type DecryptCmd struct {
	Object string `arg:"" help:"The object, as s3://bucket/key."`
	Output string `short:"o" default:"-" help:"Where to write the plaintext ('-': stdout)."`
	Info   bool   `help:"Print what the envelope says (layout, key, sizes, metadata) instead of the plaintext."`
	// Named explicitly: serve has the same option.
	RSAPrivateKeyFile string `name:"rsa-private-key-file" env:"S3SEAL_RSA_PRIVATE_KEY_FILE" help:"PEM RSA private key of objects written with serve --write-only-key-file: their data keys are unwrapped with it instead of a KMS (${env})."`

	UpstreamOptions `embed:"" envprefix:"S3SEAL_"`
	KMSOptions      `embed:"" envprefix:"S3SEAL_"`
	KeyringOptions  `embed:"" envprefix:"S3SEAL_"`
}

func (c *DecryptCmd) Run() error {
	ctx := context.Background()
	bucket, key, err := parseObjectURL(c.Object)
	if err != nil {
		return err
	}
	st, closeStore, err := c.storeOrEmbedded(c.DataDir)
	if err != nil {
		return err
	}
	defer closeStore()
	store := st.S3
	head, err := store.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return err
	}
	value := head.Metadata["s3seal"]
	if value == "" {
		return fmt.Errorf("%s has no %s metadata: not written through s3seal", c.Object, envelope.MetadataKey)
	}
	h, err := envelope.ParseHeader(value)
	if err != nil {
		return err
	}
	backend, err := headerKMS(ctx, &c.KMSOptions, &c.KeyringOptions, c.RSAPrivateKeyFile, h)
	if err != nil {
		return err
	}
	ki := h.KeyInfo()
	obj, meta, err := openHeader(ctx, backend, h, bucket, key)
	if err != nil {
		return err
	}
	defer obj.Close()
	stored := aws.ToInt64(head.ContentLength)
	etag := aws.ToString(head.ETag)
	size, err := obj.PlainSize(meta, stored, etag)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Object, err)
	}
	parts := envelope.PartsInETag(etag)
	if c.Info {
		info := map[string]any{
			"object": c.Object, "format_version": h.Version(), "layout": obj.Layout().String(),
			"kms_key": ki.KeyID, "stored_size": stored, "plaintext_size": size, "parts": parts,
			"sealed_metadata": json.RawMessage(obj.Meta()),
		}
		if z := obj.Compression(); z != nil {
			// stored / plaintext: what compression saved, tags included.
			info["compression"] = map[string]any{"algorithm": z.Algorithm, "block_size": z.BlockSize,
				"ratio": float64(stored) / float64(max(size, 1))}
		} else if obj.Flags()&envelope.FlagCompressed != 0 {
			// A multipart object whose parts may be compressed (FORMAT.md
			// 12.2.3): each part says how (s3seal inspect lists them).
			info["compression"] = map[string]any{"parts": "per part", "ratio": float64(stored) / float64(max(size, 1))}
		}
		out, _ := json.MarshalIndent(info, "", "  ")
		fmt.Println(string(out))
		return nil
	}

	var plain io.Reader = strings.NewReader("")
	var pm *envelope.PartMap
	if parts > 0 {
		// The part map, checked against the sealed manifest, before any
		// plaintext: one small ranged GET per part header.
		pm, err = envelope.ReadPartMap(parts, stored, func(off int64) (*envelope.PartHeader, error) {
			rng := fmt.Sprintf("bytes=%d-%d", off, off+envelope.PartHeaderSize-1)
			part, err := store.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, IfMatch: head.ETag, Range: &rng})
			if err != nil {
				return nil, err
			}
			defer part.Body.Close()
			buf := make([]byte, envelope.PartHeaderSize)
			if _, err := io.ReadFull(part.Body, buf); err != nil {
				return nil, err
			}
			return envelope.ParsePartHeader(buf)
		})
		if err == nil {
			err = pm.VerifyFlags(obj.Version(), obj.Flags(), meta)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.Object, err)
		}
	}
	if size > 0 || pm == nil {
		get, err := store.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, IfMatch: head.ETag})
		if err != nil {
			return err
		}
		defer get.Body.Close()
		if pm != nil {
			pb, pk := meta.PartsPath(bucket, key)
			plain = envelope.MultipartReader(get.Body, pm, nil, 0, size, func(ph *envelope.PartHeader) (*envelope.Part, error) {
				dek, err := unwrapDEK(ctx, backend, ph.KeyInfo(), pb)
				if err != nil {
					return nil, err
				}
				defer kms.Zero(dek)
				return envelope.OpenPart(ph, dek, pb, pk, meta.Upload)
			})
		} else {
			plain = obj.WholeReader(get.Body, size)
		}
	}
	w := os.Stdout
	if c.Output != "-" {
		// Written to a temporary name first: a failed authentication must
		// not leave a plausible-looking partial file behind.
		f, err := os.CreateTemp(dirOf(c.Output), ".s3seal-decrypt-*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		if _, err := io.Copy(f, plain); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(f.Name(), c.Output)
	}
	_, err = io.Copy(w, plain)
	return err
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return "."
}

// headerKMS opens the KMS that unwraps h's data key, for the commands that
// open headers without a proxy (decrypt, inspect --open), from their KMS,
// keyring and --rsa-private-key-file options. A header that names the PEM
// key of rsaFile needs no KMS, and none is opened (a keyring would be
// created for nothing); with both, headers that name the PEM key go to it
// and all others to the KMS.
func headerKMS(ctx context.Context, ko *KMSOptions, kro *KeyringOptions, rsaFile string, h *envelope.Header) (kms.Client, error) {
	if rsaFile != "" && rsafile.IsKeyID(h.KeyInfo().KeyID) {
		return rsafile.LoadPrivate(rsaFile)
	}
	krCfg, _, err := kro.keyringConfig()
	if err != nil && ko.KMS == "local" {
		return nil, err
	}
	backend, err := openKMS(ctx, *ko, "", krCfg)
	if err != nil {
		return nil, err
	}
	if rsaFile != "" {
		pemKey, err := rsafile.LoadPrivate(rsaFile)
		if err != nil {
			return nil, err
		}
		backend = &pemRouter{Client: backend, pem: pemKey}
	}
	return backend, nil
}

// openHeader unwraps h's data key with backend, opens the header of
// bucket/key with it and decodes its sealed metadata. The caller closes
// the object. An unwrap that fails says which key it needed: for a
// write-only writer's RSA wrap (FORMAT.md 12.3) the KMS of the command
// usually has no right to it at all.
func openHeader(ctx context.Context, backend kms.Client, h *envelope.Header, bucket, key string) (*envelope.Object, *envelope.Meta, error) {
	ki := h.KeyInfo()
	dek, err := unwrapDEK(ctx, backend, ki, bucket)
	if err != nil {
		if ki.Flags&envelope.FlagAsymmetricWrap != 0 {
			return nil, nil, fmt.Errorf("unwrap the data key: it is wrapped with the RSA public key %s (a write-only writer); "+
				"opening it needs that key's private half (--rsa-private-key-file, or a KMS with Decrypt rights on it): %w", ki.KeyID, err)
		}
		return nil, nil, fmt.Errorf("unwrap the data key with KMS key %s: %w", ki.KeyID, err)
	}
	obj, err := envelope.Open(h, dek, bucket, key)
	kms.Zero(dek)
	if err != nil {
		return nil, nil, err
	}
	meta, err := envelope.DecodeMeta(obj.Meta())
	if err != nil {
		obj.Close()
		return nil, nil, err
	}
	return obj, meta, nil
}

// unwrapDEK unwraps a header's data key: with KMS Decrypt under the
// bucket's encryption context, or, when the header says an RSA public key
// wrapped it (FORMAT.md section 12.3), with KMS Decrypt of the RSA key's
// private half (RSAES_OAEP_SHA_256, no encryption context).
func unwrapDEK(ctx context.Context, backend kms.Client, ki envelope.KeyInfo, bucket string) ([]byte, error) {
	if ki.Flags&envelope.FlagAsymmetricWrap == 0 {
		return backend.Decrypt(ctx, ki.KeyID, ki.Wrapped, kms.BucketContext(bucket))
	}
	if pr, ok := backend.(*pemRouter); ok && rsafile.IsKeyID(ki.KeyID) {
		backend = pr.pem
	}
	a, err := kms.NewAsymmetric(backend, kms.AsymmetricConfig{Decrypt: true})
	if err != nil {
		return nil, err
	}
	return a.Decrypt(ctx, ki.KeyID, ki.Wrapped, nil)
}

// pemRouter is decrypt's KMS when a PEM private key is given: headers
// that name the PEM key (rsafile.KeyIDPrefix) are unwrapped with it, all
// others with the KMS.
type pemRouter struct {
	kms.Client
	pem *rsafile.Key
}

// GetPublicKey and DecryptAsymmetric reach the KMS's RSA keys.
func (p *pemRouter) GetPublicKey(ctx context.Context, keyID string) (*kms.PublicKey, error) {
	a, ok := p.Client.(kms.AsymmetricClient)
	if !ok {
		return nil, fmt.Errorf("%T has no asymmetric keys", p.Client)
	}
	return a.GetPublicKey(ctx, keyID)
}

func (p *pemRouter) DecryptAsymmetric(ctx context.Context, keyID, alg string, ct []byte) ([]byte, error) {
	a, ok := p.Client.(kms.AsymmetricClient)
	if !ok {
		return nil, fmt.Errorf("%T has no asymmetric keys", p.Client)
	}
	return a.DecryptAsymmetric(ctx, keyID, alg, ct)
}
