package envelope

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Two proxy instances, each with its own data key.
var (
	instKI  = []KeyInfo{{KeyID: "key-a", Wrapped: []byte("wrapped-a")}, {KeyID: "key-b", Wrapped: []byte("wrapped-b")}}
	instDEK = [][]byte{bytes.Repeat([]byte{0xa}, KeySize), bytes.Repeat([]byte{0xb}, KeySize)}
	instMap = map[string][]byte{"key-a": instDEK[0], "key-b": instDEK[1]}
)

// mpUpload is a multipart upload built in memory as the proxy builds one:
// its parts sealed to (bucket, key, upload) by alternating instances.
type mpUpload struct {
	bucket, key string
	version     byte   // of the parts
	upload      []byte // nil for version 1
	nums        []int
	plains      [][]byte
	parts       [][]byte // stored parts, in part-number order
}

// newUpload seals parts nums of the given sizes, plaintexts drawn from seed.
// A version 2 upload gets a fresh upload identity.
func newUpload(t testing.TB, version byte, bucket, key string, nums []int, sizes []int, seed uint64) *mpUpload {
	t.Helper()
	u := &mpUpload{bucket: bucket, key: key, version: version, nums: nums}
	cfg := Config{version: version}
	if version >= 2 {
		var err error
		if u.upload, err = NewUploadID(); err != nil {
			t.Fatal(err)
		}
	}
	for i, num := range nums {
		u.plains = append(u.plains, randBytes(seed*1000+uint64(i), sizes[i]))
		u.parts = append(u.parts, u.seal(t, cfg, i%2, num, u.plains[i]))
	}
	return u
}

func (u *mpUpload) seal(t testing.TB, cfg Config, inst, num int, plain []byte) []byte {
	t.Helper()
	p, err := cfg.NewPart(instDEK[inst], instKI[inst], u.bucket, u.key, u.upload, num, int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b, err := readAllBuf(p.EncryptReader(bytes.NewReader(plain)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// retry re-uploads part index i with new content of the same size (the
// client retried UploadPart): same upload, same number, new part key.
func (u *mpUpload) retry(t testing.TB, i int, seed uint64) (stored, plain []byte) {
	plain = randBytes(seed, len(u.plains[i]))
	return u.seal(t, Config{version: u.version}, 1-i%2, u.nums[i], plain), plain
}

func (u *mpUpload) body() []byte  { return slices.Concat(u.parts...) }
func (u *mpUpload) plain() []byte { return slices.Concat(u.plains...) }
func (u *mpUpload) open() PartOpener {
	return openWith(instMap, u.bucket, u.key, u.upload)
}

// finalize is CompleteMultipartUpload: the sealed Meta of the completed
// object, with the manifest of its part map.
func (u *mpUpload) finalize(t testing.TB) *Meta {
	t.Helper()
	pm, err := ReadPartMap(len(u.parts), int64(len(u.body())), bodyFetcher(u.body()))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := pm.Manifest(u.upload)
	if err != nil {
		t.Fatal(err)
	}
	return &Meta{Size: -1, Upload: u.upload, Manifest: mf}
}

// etagN is a store ETag of a multipart object of n parts.
func etagN(n int) string { return fmt.Sprintf(`"0123456789abcdef0123456789abcdef-%d"`, n) }

// readObject reads a whole multipart object as a GET through the proxy
// does, in its order: the sizes against the sealed metadata (PlainSize),
// the part map against the manifest (ReadPartMap, Verify), then the
// plaintext (MultipartReader).
func readObject(t testing.TB, meta *Meta, body []byte, parts int, open PartOpener) ([]byte, error) {
	t.Helper()
	o, err := NewObject(instDEK[0], instKI[0], "hdr", "hdr", LayoutMultipart, meta.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	size, err := o.PlainSize(meta, int64(len(body)), etagN(parts))
	if err != nil {
		return nil, err
	}
	pm, err := ReadPartMap(parts, int64(len(body)), bodyFetcher(body))
	if err != nil {
		return nil, err
	}
	if err := pm.Verify(Version, meta); err != nil {
		return nil, err
	}
	if pm.Size() != size {
		t.Fatalf("verified map of %d bytes, PlainSize %d", pm.Size(), size)
	}
	return readMultipart(body, pm, 0, size, open, 1<<20)
}

// A version 2 part opens only with the identity of its upload, and a part
// of one version never passes for the other.
func TestUploadBinding(t *testing.T) {
	const bucket, key = "b", "k"
	plain := randBytes(1, S+5)
	a := newUpload(t, 2, bucket, key, []int{3}, []int{len(plain)}, 1)
	b := newUpload(t, 2, bucket, key, []int{3}, []int{len(plain)}, 1)
	v1 := newUpload(t, 1, bucket, key, []int{3}, []int{len(plain)}, 1)
	open := func(stored []byte, upload []byte) error {
		p, err := openStoredPart(stored, instDEK[0], bucket, key, upload)
		if err != nil {
			return err
		}
		defer p.Close()
		got, err := readAllBuf(p.DecryptReader(bytes.NewReader(stored[PartHeaderSize:]), 0, p.PlainLen()), 1<<20)
		if err == nil && !bytes.Equal(got, a.plains[0]) {
			err = errors.New("wrong plaintext")
		}
		return err
	}
	if err := open(a.parts[0], a.upload); err != nil {
		t.Fatalf("own upload: %v", err)
	}
	if err := open(v1.parts[0], nil); err != nil {
		t.Fatalf("version 1 part: %v", err)
	}
	// Same bucket, key, part number, data key and plaintext; another upload.
	for _, tc := range []struct {
		name   string
		stored []byte
		upload []byte
	}{
		{"part of another upload", a.parts[0], b.upload},
		{"other upload's part", b.parts[0], a.upload},
		{"version 2 part without identity", a.parts[0], nil},
		{"version 2 part with a short identity", a.parts[0], a.upload[:8]},
		{"version 1 part with an identity", v1.parts[0], a.upload},
	} {
		if err := open(tc.stored, tc.upload); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", tc.name, err)
		}
	}
	// The version byte is authenticated: a version 2 part relabelled 1
	// (or the reverse) derives other keys and another key AAD.
	relabel := func(stored []byte, v byte) []byte {
		s := bytes.Clone(stored)
		s[4] = v
		return s
	}
	if err := open(relabel(a.parts[0], 1), nil); !errors.Is(err, ErrAuth) {
		t.Errorf("version 2 part relabelled 1: %v", err)
	}
	if err := open(relabel(v1.parts[0], 2), a.upload); !errors.Is(err, ErrAuth) {
		t.Errorf("version 1 part relabelled 2: %v", err)
	}
	// Writers refuse what readers could not open.
	if _, err := NewPart(instDEK[0], instKI[0], bucket, key, nil, 1, 1); !errors.Is(err, ErrFormat) {
		t.Errorf("version 2 part without identity: %v", err)
	}
	if _, err := NewPart(instDEK[0], instKI[0], bucket, key, make([]byte, UploadIDSize+1), 1, 1); !errors.Is(err, ErrFormat) {
		t.Errorf("version 2 part with a 17-byte identity: %v", err)
	}
	if _, err := (Config{version: 1}).NewPart(instDEK[0], instKI[0], bucket, key, a.upload, 1, 1); !errors.Is(err, ErrFormat) {
		t.Errorf("version 1 part with an identity: %v", err)
	}
	if u1, u2 := must(NewUploadID()), must(NewUploadID()); len(u1) != UploadIDSize || bytes.Equal(u1, u2) {
		t.Errorf("NewUploadID: %x, %x", u1, u2)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Parts bound to an upload are version 2 parts, and an object without an
// upload identity has version 1 parts: no map mixing them verifies, and no
// manifest is made of one.
func TestCheckVersions(t *testing.T) {
	sizes := []int{100, 100}
	v1 := newUpload(t, 1, "b", "k", []int{1, 2}, sizes, 1)
	v2 := newUpload(t, 2, "b", "k", []int{1, 2}, sizes, 2)
	mixed := &mpUpload{parts: [][]byte{v1.parts[0], v2.parts[1]}}
	pmOf := func(u *mpUpload) *PartMap {
		pm, err := ReadPartMap(len(u.parts), int64(len(u.body())), bodyFetcher(u.body()))
		if err != nil {
			t.Fatal(err)
		}
		return pm
	}
	for _, tc := range []struct {
		name   string
		u      *mpUpload
		upload []byte
		ok     bool
	}{
		{"version 1 parts, no identity (a copy of a version 1 object)", v1, nil, true},
		{"version 2 parts, their identity", v2, v2.upload, true},
		{"version 1 parts, an identity", v1, v2.upload, false},
		{"version 2 parts, no identity", v2, nil, false},
		{"mixed, identity", mixed, v2.upload, false},
		{"mixed, no identity", mixed, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pmOf(tc.u).Manifest(tc.upload)
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrManifest) {
				t.Fatalf("Manifest: %v", err)
			}
			// Even a manifest whose digest matches (no writer makes one)
			// does not make such a map verify.
			pm := pmOf(tc.u)
			mf := &Manifest{Parts: pm.Parts(), Size: pm.Size(), Digest: pm.manifestDigest(tc.upload)}
			err = pm.Verify(Version, &Meta{Size: -1, Upload: tc.upload, Manifest: mf})
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrManifest) {
				t.Fatalf("Verify: %v", err)
			}
			if pm.Verified() != tc.ok {
				t.Fatalf("Verified() = %v", pm.Verified())
			}
			// Without a manifest: a version 1 object's map only has to be
			// consistent; an object with an identity is not finalized.
			version := Version
			if tc.upload == nil {
				version = 1 // an object without an identity is a version 1 one
			}
			err = pmOf(tc.u).Verify(version, &Meta{Size: -1, Upload: tc.upload})
			switch {
			case !tc.ok && !errors.Is(err, ErrManifest):
				t.Fatalf("Verify without manifest: %v", err)
			case tc.ok && tc.upload == nil && err != nil:
				t.Fatalf("Verify of a version 1 object: %v", err)
			case tc.ok && tc.upload != nil && !errors.Is(err, ErrIncomplete):
				t.Fatalf("Verify of an unfinalized object: %v, want ErrIncomplete", err)
			}
		})
	}
}

// What a party with write access to the store can do to a finalized
// version 2 multipart object, and what readers answer. Every failure
// comes before any plaintext of a part the object was not completed with.
func TestManifestTamper(t *testing.T) {
	const bucket, key = "bucket", "big/object"
	nums := []int{1, 2, 3, 4}
	sizes := []int{S + 10, S + 10, S + 10, 7}
	a := newUpload(t, 2, bucket, key, nums, sizes, 1)
	metaA := a.finalize(t)
	b := newUpload(t, 2, bucket, key, nums, sizes, 2) // another upload to the same key
	metaB := b.finalize(t)
	b5 := newUpload(t, 2, bucket, key, []int{1, 2, 3, 4, 5}, append(slices.Clone(sizes), 7), 3)
	// A part sealed to another key, even with this upload's identity.
	elsewhere := &mpUpload{bucket: bucket, key: "other/object", version: 2, upload: a.upload}
	elsewherePart := elsewhere.seal(t, Config{}, 0, 2, a.plains[1])
	retried, _ := a.retry(t, 1, 99)

	with := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	p := a.parts
	for _, tc := range []struct {
		name  string
		meta  *Meta
		body  []byte
		parts int // the N of the store's ETag
		want  []error
	}{
		{"untampered", metaA, a.body(), 4, nil},
		{"middle part dropped", metaA, with(p[0], p[1], p[3]), 3, []error{ErrManifest}},
		{"middle part dropped, ETag keeps N", metaA, with(p[0], p[1], p[3]), 4, []error{ErrManifest}},
		{"trailing parts dropped", metaA, with(p[0], p[1]), 2, []error{ErrManifest}},
		{"last part dropped", metaA, with(p[0], p[1], p[2]), 3, []error{ErrManifest}},
		{"part appended", metaA, with(a.body(), b5.parts[4]), 5, []error{ErrManifest}},
		{"part spliced from another upload", metaA, with(p[0], p[1], b.parts[2], p[3]), 4, []error{ErrManifest}},
		{"all parts of another upload (manifest of another object)", metaA, b.body(), 4, []error{ErrManifest}},
		{"other upload's header on this body", metaB, a.body(), 4, []error{ErrManifest}},
		{"parts reordered", metaA, with(p[1], p[0], p[2], p[3]), 4, []error{ErrManifest}},
		{"parts reordered in the middle", metaA, with(p[0], p[2], p[1], p[3]), 4, []error{ErrManifest}},
		{"part duplicated", metaA, with(p[0], p[0], p[2], p[3]), 4, []error{ErrManifest}},
		{"retried part substituted", metaA, with(p[0], retried, p[2], p[3]), 4, []error{ErrManifest}},
		{"part of another key, same identity", metaA, with(p[0], elsewherePart, p[2], p[3]), 4, []error{ErrManifest}},
		{"body cut short", metaA, a.body()[:len(a.body())-1], 4, []error{ErrManifest}},
		{"not finalized", &Meta{Size: -1, Upload: a.upload}, a.body(), 4, []error{ErrIncomplete}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readObject(t, tc.meta, tc.body, tc.parts, a.open())
			if tc.want == nil {
				if err != nil || !bytes.Equal(got, a.plain()) {
					t.Fatalf("err %v, equal %v", err, bytes.Equal(got, a.plain()))
				}
				return
			}
			mustFail(t, tc.name, got, a.plain(), err, tc.want...)
			if len(got) != 0 {
				t.Fatalf("%d bytes returned", len(got))
			}
		})
	}

	// The map verified once (a reader caches it by ETag and header) is
	// checked against every part header read with the data: a part replaced
	// since fails before it is opened, with nothing of it returned.
	pm, err := ReadPartMap(4, int64(len(a.body())), bodyFetcher(a.body()))
	if err != nil {
		t.Fatal(err)
	}
	if err := pm.Verify(Version, metaA); err != nil {
		t.Fatal(err)
	}
	opened := 0
	counting := func(ph *PartHeader) (*Part, error) { opened++; return a.open()(ph) }
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"retried part", with(p[0], retried, p[2], p[3])},
		{"spliced part", with(p[0], b.parts[1], p[2], p[3])},
	} {
		for _, chunk := range []int{4096, 0} {
			opened = 0
			got, err := readMultipart(tc.body, pm, 0, pm.Size(), counting, chunk)
			mustFail(t, tc.name, got, a.plain(), err, ErrManifest)
			if len(got) > len(a.plains[0]) || opened != 1 {
				t.Fatalf("%s: %d bytes returned, %d parts opened", tc.name, len(got), opened)
			}
			// A range that starts in the replaced part, its header read apart.
			got, err = readMultipart(tc.body, pm, int64(len(a.plains[0]))+S+1, 5, counting, chunk)
			mustFail(t, tc.name+" (range)", got, nil, err, ErrManifest)
		}
	}

	// A map that was not verified does not read at all (without Verify,
	// only the part key's binding would refuse parts of other uploads and
	// paths, and a retried part of this upload would pass).
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"spliced part", with(p[0], p[1], b.parts[2], p[3])},
		{"part of another key", with(p[0], elsewherePart, p[2], p[3])},
	} {
		pm, err := ReadPartMap(4, int64(len(tc.body)), bodyFetcher(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := readMultipart(tc.body, pm, 0, pm.Size(), a.open(), 4096)
		mustFail(t, tc.name+" (unverified map)", got, a.plain(), err, ErrManifest)
	}
}

// recorder is a HeaderFetcher over a stored body that records the offsets
// fetched and the most fetches that ran at once. With wait set, a fetch
// past the first header waits (up to a second) for a second fetch to be
// running, so that parallel fetching shows deterministically.
type recorder struct {
	body          []byte
	wait          bool
	failAt        int64 // fail the fetch at this offset, if > 0
	err           error
	running, most atomic.Int32
	two           chan struct{}
	twoOnce       sync.Once
	mu            sync.Mutex
	offsets       []int64
}

func newRecorder(body []byte, wait bool) *recorder {
	return &recorder{body: body, wait: wait, two: make(chan struct{})}
}

func (r *recorder) fetch(off int64) (*PartHeader, error) {
	n := r.running.Add(1)
	defer r.running.Add(-1)
	for m := r.most.Load(); n > m && !r.most.CompareAndSwap(m, n); m = r.most.Load() {
	}
	if n >= 2 {
		r.twoOnce.Do(func() { close(r.two) })
	}
	r.mu.Lock()
	r.offsets = append(r.offsets, off)
	r.mu.Unlock()
	if r.wait && off > 0 {
		select {
		case <-r.two:
		case <-time.After(time.Second):
		}
	}
	if r.failAt > 0 && off == r.failAt {
		return nil, r.err
	}
	return bodyFetcher(r.body)(off)
}

// ReadPartMap reads every part header once, in parallel, when the parts
// are equal-sized; one after the other otherwise, or when the equal-sized
// guess turns out wrong. Whichever way, the map is the stored layout and
// verifies.
func TestReadPartMap(t *testing.T) {
	const (
		parallel   = iota // the guess holds: each header fetched once, several at a time
		sequential        // no guess: each header fetched once, in order
		fallback          // the guess fails: then each header after the first, in order
	)
	for _, tc := range []struct {
		name  string
		nums  []int
		sizes []int
		mode  int
	}{
		{"one part", []int{1}, []int{S}, sequential},
		{"regular", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, []int{S + 1, S + 1, S + 1, S + 1, S + 1, S + 1, S + 1, S + 1, S + 1, 5}, parallel},
		{"regular, last part full", []int{1, 2, 3}, []int{S, S, S}, parallel},
		{"regular, last part empty", []int{1, 2, 3}, []int{S, S, 0}, parallel},
		{"regular, all empty", []int{1, 2, 3}, []int{0, 0, 0}, parallel},
		{"two parts", []int{1, 2}, []int{100, 3}, parallel},
		{"last part larger", []int{1, 2, 3}, []int{10, 10, 2 * S}, sequential},
		{"first part smaller", []int{1, 2, 3}, []int{0, S, S}, sequential},
		{"first number not 1", []int{2, 3, 4}, []int{S, S, 3}, sequential},
		{"empty parts in the middle", []int{1, 2, 3, 4, 5}, []int{S, 0, S, 0, 1}, sequential},
		{"middle part of another size", []int{1, 2, 3, 4}, []int{100, 60, 140, 50}, fallback},
		{"sparse numbers, equal sizes", []int{1, 5, 9, 10000}, []int{S, S, S, 3}, fallback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpload(t, 2, "b", "k", tc.nums, tc.sizes, 5)
			body := u.body()
			n := len(tc.nums)
			rec := newRecorder(body, tc.mode == parallel && n > 2)
			pm, err := ReadPartMap(n, int64(len(body)), rec.fetch)
			if err != nil {
				t.Fatal(err)
			}
			var starts []int64
			var plainOff, storedOff int64
			for i := range tc.nums {
				num, ps, pl, ss := pm.Part(i)
				if num != tc.nums[i] || ps != plainOff || pl != int64(tc.sizes[i]) || ss != storedOff || pm.Index(num) != i {
					t.Fatalf("part %d: %d %d %d %d", i, num, ps, pl, ss)
				}
				starts = append(starts, storedOff)
				plainOff += pl
				storedOff += PartCiphertextSize(pl)
			}
			if pm.Parts() != n || pm.Size() != plainOff || pm.Index(tc.nums[n-1]+1) != -1 || pm.Index(0) != -1 {
				t.Fatalf("Parts %d, Size %d", pm.Parts(), pm.Size())
			}
			got := rec.offsets
			switch tc.mode {
			case parallel:
				if slices.Sort(got); !slices.Equal(got, starts) || n > 2 && rec.most.Load() < 2 {
					t.Fatalf("fetched %v, at most %d at once; want %v in parallel", got, rec.most.Load(), starts)
				}
			case sequential:
				if !slices.Equal(got, starts) || rec.most.Load() != 1 {
					t.Fatalf("fetched %v, at most %d at once; want %v one at a time", got, rec.most.Load(), starts)
				}
			case fallback:
				if len(got) <= n || !slices.Equal(got[len(got)-n+1:], starts[1:]) {
					t.Fatalf("fetched %v; want a guess, then %v", got, starts[1:])
				}
			}
			mf, err := pm.Manifest(u.upload)
			if err != nil {
				t.Fatal(err)
			}
			if mf.Parts != n || mf.Size != plainOff || len(mf.Digest) != sha256.Size {
				t.Fatalf("manifest %+v", mf)
			}
			if plainOff == 0 {
				return // nothing to read: an empty object's parts are its headers, verified
			}
			meta := &Meta{Size: -1, Upload: u.upload, Manifest: mf}
			got2, err := readObject(t, meta, body, n, u.open())
			if err != nil || !bytes.Equal(got2, u.plain()) {
				t.Fatalf("read back: %v", err)
			}
		})
	}

	u := newUpload(t, 2, "b", "k", []int{1, 2, 3}, []int{S, S, 9}, 6)
	body := u.body()
	stored := int64(len(body))
	t.Run("fetch error", func(t *testing.T) {
		boom := errors.New("store unreachable")
		for _, at := range []int64{PartCiphertextSize(S), 2 * PartCiphertextSize(S)} {
			rec := newRecorder(body, false)
			rec.failAt, rec.err = at, boom
			if _, err := ReadPartMap(3, stored, rec.fetch); !errors.Is(err, boom) {
				t.Fatalf("fetch failing at %d: %v", at, err)
			}
		}
		if _, err := ReadPartMap(3, stored, func(int64) (*PartHeader, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("first fetch failing: %v", err)
		}
	})
	t.Run("sizes", func(t *testing.T) {
		for _, tc := range []struct {
			parts  int
			stored int64
			want   error
		}{
			{0, stored, ErrSize},
			{MaxPartNumber + 1, stored, ErrSize},
			{4, stored, ErrTruncated},    // more parts than stored
			{2, stored, ErrManifest},     // fewer
			{3, stored + 1, ErrManifest}, // a byte more than the parts
			{3, stored - 1, ErrManifest}, // a byte less
			{3, stored + PartOverhead, ErrManifest},
		} {
			if _, err := ReadPartMap(tc.parts, tc.stored, bodyFetcher(body)); !errors.Is(err, tc.want) {
				t.Errorf("%d parts, %d bytes: %v, want %v", tc.parts, tc.stored, err, tc.want)
			}
		}
	})
}

// The manifest digest is the bytes FORMAT.md gives, over the upload
// identity, the part count and each part's number, size and header.
func TestManifestDigest(t *testing.T) {
	u := newUpload(t, 2, "b", "k", []int{2, 7}, []int{5, 0}, 7)
	pm, err := ReadPartMap(2, int64(len(u.body())), bodyFetcher(u.body()))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := pm.Manifest(u.upload)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("s3seal/2 manifest")
	want = append(want, byte(len(u.upload)))
	want = append(want, u.upload...)
	want = append(want, 0, 0, 0, 2)
	want = append(want, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5)
	h1 := sha256.Sum256(u.parts[0][:PartHeaderSize])
	want = append(want, h1[:]...)
	want = append(want, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0)
	h2 := sha256.Sum256(u.parts[1][:PartHeaderSize])
	want = append(want, h2[:]...)
	if d := sha256.Sum256(want); !bytes.Equal(mf.Digest, d[:]) || mf.Parts != 2 || mf.Size != 5 {
		t.Fatalf("manifest %+v, digest want %x", mf, d)
	}
	// Every input changes it.
	other := bytes.Clone(u.upload)
	other[0] ^= 1
	mf2, _ := pm.Manifest(other)
	if bytes.Equal(mf2.Digest, mf.Digest) {
		t.Fatal("digest does not cover the upload identity")
	}
	for _, bad := range []*Manifest{
		{Parts: 3, Size: 5, Digest: mf.Digest},
		{Parts: 2, Size: 6, Digest: mf.Digest},
		{Parts: 2, Size: 5, Digest: mf.Digest[:31]},
		{Parts: 2, Size: 5, Digest: nil},
		{Parts: 2, Size: 5, Digest: mf2.Digest},
	} {
		if err := pm.Verify(Version, &Meta{Size: -1, Upload: u.upload, Manifest: bad}); !errors.Is(err, ErrManifest) {
			t.Errorf("manifest %+v: %v", bad, err)
		}
	}
}

// Object.PlainSize checks the store's size and ETag against the header and
// sealed metadata, and fails closed.
func TestPlainSize(t *testing.T) {
	obj := func(version byte, layout Layout) *Object {
		o, err := Config{version: version}.NewObject(instDEK[0], instKI[0], "b", "k", layout, nil)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	mf := &Manifest{Parts: 3, Size: 1000, Digest: make([]byte, 32)}
	mpStored := 1000 + 3*PartOverhead
	up := make([]byte, UploadIDSize)
	for _, tc := range []struct {
		name    string
		o       *Object
		meta    *Meta
		stored  int64
		etag    string
		want    int64
		wantErr error
	}{
		{"single", obj(2, LayoutSingle), &Meta{Size: 100}, CiphertextSize(100), `"d41d8cd98f00b204e9800998ecf8427e"`, 100, nil},
		{"single, empty", obj(2, LayoutSingle), &Meta{Size: 0}, 16, `"x"`, 0, nil},
		{"single, version 1", obj(1, LayoutSingle), &Meta{Size: S}, CiphertextSize(S), `"x"`, S, nil},
		{"single, stored size of another plaintext size", obj(2, LayoutSingle), &Meta{Size: 100}, CiphertextSize(101), `"x"`, 0, ErrSize},
		{"single, impossible stored size", obj(2, LayoutSingle), &Meta{Size: 100}, 15, `"x"`, 0, ErrSize},
		{"single, multipart ETag", obj(2, LayoutSingle), &Meta{Size: 100}, CiphertextSize(100), etagN(1), 0, ErrLayout},
		{"multipart", obj(2, LayoutMultipart), &Meta{Size: -1, Upload: up, Manifest: mf}, mpStored, etagN(3), 1000, nil},
		{"multipart, ETag unquoted", obj(2, LayoutMultipart), &Meta{Size: -1, Upload: up, Manifest: mf}, mpStored, "abc-3", 1000, nil},
		{"multipart, no manifest", obj(2, LayoutMultipart), &Meta{Size: -1, Upload: up}, mpStored, etagN(3), 0, ErrIncomplete},
		{"multipart, no manifest, no identity", obj(2, LayoutMultipart), &Meta{Size: -1}, mpStored, etagN(3), 0, ErrIncomplete},
		{"multipart, more parts than the manifest", obj(2, LayoutMultipart), &Meta{Size: -1, Upload: up, Manifest: mf}, mpStored + PartOverhead, etagN(4), 0, ErrManifest},
		{"multipart, fewer parts", obj(2, LayoutMultipart), &Meta{Size: -1, Upload: up, Manifest: mf}, mpStored - PartOverhead, etagN(2), 0, ErrManifest},
		{"multipart, one byte more", obj(2, LayoutMultipart), &Meta{Size: -1, Upload: up, Manifest: mf}, mpStored + 1, etagN(3), 0, ErrManifest},
		{"multipart, one byte less", obj(2, LayoutMultipart), &Meta{Size: -1, Upload: up, Manifest: mf}, mpStored - 1, etagN(3), 0, ErrManifest},
		{"multipart, impossible stored size", obj(2, LayoutMultipart), &Meta{Size: -1, Upload: up, Manifest: mf}, 3*PartOverhead - 1, etagN(3), 0, ErrSize},
		{"multipart, single ETag", obj(2, LayoutMultipart), &Meta{Size: -1, Upload: up, Manifest: mf}, mpStored, `"abc"`, 0, ErrLayout},
		{"multipart, client ETag of a single object", obj(2, LayoutMultipart), &Meta{Size: -1, Upload: up, Manifest: mf}, mpStored, `"abc-0"`, 0, ErrLayout},
		{"multipart, version 1, no manifest", obj(1, LayoutMultipart), &Meta{Size: -1}, mpStored, etagN(3), 1000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.o.Close()
			got, err := tc.o.PlainSize(tc.meta, tc.stored, tc.etag)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestPartsInETagAndListedSize(t *testing.T) {
	for _, tc := range []struct {
		etag string
		n    int
	}{
		{`"9b2cf535f27731c974343645a3985328-3"`, 3}, {`9b2cf535f27731c974343645a3985328-10000`, 10000},
		{`"9b2cf535f27731c974343645a3985328"`, 0}, {`"x-0"`, 0}, {`"x-10001"`, 0}, {`"x--1"`, 1},
		{`"x-"`, 0}, {`"x-abc"`, 0}, {`"a-b-2"`, 2}, {``, 0}, {`""`, 0},
	} {
		if n := PartsInETag(tc.etag); n != tc.n {
			t.Errorf("PartsInETag(%s) = %d, want %d", tc.etag, n, tc.n)
		}
	}
	for _, tc := range []struct {
		stored int64
		etag   string
		size   int64
		ok     bool
	}{
		{CiphertextSize(S + 1), `"abc"`, S + 1, true},
		{15, `"abc"`, 0, false},
		{S + 17, `"abc"`, 0, false},
		{2*PartOverhead + 5, `"abc-2"`, 5, true},
		{2*PartOverhead - 1, `"abc-2"`, 0, false},
	} {
		if size, ok := ListedSize(tc.stored, tc.etag); ok != tc.ok || ok && size != tc.size {
			t.Errorf("ListedSize(%d, %s) = %d, %v", tc.stored, tc.etag, size, ok)
		}
	}
}

// The sealed metadata blob: field names as FORMAT.md gives them, round
// trips, and the version 1 encoding without version 2 fields.
func TestMeta(t *testing.T) {
	full := &Meta{
		Size:     -1,
		User:     map[string]string{"color": "blue"},
		MD5:      "1B2M2Y8AsgTpgAmY7PhCfg==",
		Checksum: map[string]string{"x-amz-checksum-crc32": "AAAAAA=="},
		Origin:   &Path{Bucket: "src", Key: "a/b"},
		Headers:  map[string]string{"Content-Type": "text/plain"},
		Upload:   []byte("0123456789abcdef"),
		Manifest: &Manifest{Parts: 2, Size: 10, Digest: bytes.Repeat([]byte{1}, 32)},
		Create:   map[string]string{"X-Amz-Acl": "private"},
	}
	got, err := DecodeMeta(full.Encode())
	if err != nil || !reflect.DeepEqual(got, full) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(full.Encode(), &fields); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(fields)); !slices.Equal(keys, []string{"c", "h", "m", "mf", "o", "s", "u", "up", "w"}) {
		t.Fatalf("fields %v", keys)
	}
	if string(fields["up"]) != `"MDEyMzQ1Njc4OWFiY2RlZg=="` || string(fields["o"]) != `{"b":"src","k":"a/b"}` {
		t.Fatalf("up %s, o %s", fields["up"], fields["o"])
	}
	if string(fields["mf"]) != `{"n":2,"s":10,"d":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}` {
		t.Fatalf("mf %s", fields["mf"])
	}
	v1 := full.EncodeFor(1)
	if want := `{"s":-1,"u":{"color":"blue"},"m":"1B2M2Y8AsgTpgAmY7PhCfg==","c":{"x-amz-checksum-crc32":"AAAAAA=="},"o":{"b":"src","k":"a/b"}}`; string(v1) != want {
		t.Fatalf("EncodeFor(1) = %s", v1)
	}
	if !bytes.Equal(full.EncodeFor(2), full.Encode()) || full.Headers == nil || full.Manifest == nil {
		t.Fatal("EncodeFor(2) differs from Encode, or EncodeFor changed its receiver")
	}
	if e := (&Meta{}).Encode(); string(e) != `{"s":0}` {
		t.Fatalf("empty Meta: %s", e)
	}
	// Readers ignore fields they do not know.
	if m, err := DecodeMeta([]byte(`{"s":5,"future":{"x":1},"u":{"a":"b"}}`)); err != nil || m.Size != 5 || m.User["a"] != "b" {
		t.Fatalf("unknown field: %+v, %v", m, err)
	}
	for _, bad := range []string{``, `{`, `[]`, `{"s":"5"}`, `{"s":1.5}`, `{"up":"not base64!"}`, `{"mf":[]}`} {
		if m, err := DecodeMeta([]byte(bad)); !errors.Is(err, ErrFormat) || m != nil {
			t.Errorf("DecodeMeta(%q): %+v, %v", bad, m, err)
		}
	}
	if b, k := full.PartsPath("dst", "x"); b != "src" || k != "a/b" {
		t.Fatalf("PartsPath with Origin: %s/%s", b, k)
	}
	if b, k := (&Meta{}).PartsPath("dst", "x"); b != "dst" || k != "x" {
		t.Fatalf("PartsPath: %s/%s", b, k)
	}
}

// Copies of multipart objects keep the source's parts: a new header at the
// destination whose Meta names the path the parts are sealed to (Origin),
// with the source's identity and manifest; a copy of a version 1 object
// gets a manifest of its version 1 parts (no identity).
func TestMultipartCopies(t *testing.T) {
	for _, version := range []byte{1, 2} {
		t.Run(fmt.Sprintf("source version %d", version), func(t *testing.T) {
			src := newUpload(t, version, "src-bucket", "src/key", []int{1, 2, 3}, []int{S + 1, S + 1, 100}, 8)
			body := src.body()
			pm, err := ReadPartMap(3, int64(len(body)), bodyFetcher(body))
			if err != nil {
				t.Fatal(err)
			}
			srcMeta := &Meta{Size: -1, Upload: src.upload}
			if version >= 2 {
				srcMeta = src.finalize(t)
			}
			if err := pm.Verify(int(version), srcMeta); err != nil {
				t.Fatal(err)
			}
			cp := *srcMeta
			cp.Origin = &Path{Bucket: src.bucket, Key: src.key}
			if cp.Manifest == nil {
				if cp.Manifest, err = pm.Manifest(cp.Upload); err != nil {
					t.Fatal(err)
				}
			}
			dst, err := NewObject(instDEK[1], instKI[1], "dst-bucket", "dst/key", LayoutMultipart, cp.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			h, _ := ParseHeader(dst.HeaderValue())
			o, err := Open(h, instDEK[1], "dst-bucket", "dst/key")
			if err != nil {
				t.Fatal(err)
			}
			meta, err := DecodeMeta(o.Meta())
			if err != nil {
				t.Fatal(err)
			}
			pb, pk := meta.PartsPath("dst-bucket", "dst/key")
			got, err := readObject(t, meta, body, 3, openWith(instMap, pb, pk, meta.Upload))
			if err != nil || !bytes.Equal(got, src.plain()) {
				t.Fatalf("copy: %v", err)
			}
			// The parts do not open at the destination's own path.
			_, err = readObject(t, meta, body, 3, openWith(instMap, "dst-bucket", "dst/key", meta.Upload))
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("parts opened at the copy's path: %v", err)
			}
		})
	}
}

// A ReadPartMap over random layouts always agrees
// with the layout it was built from, whichever path (parallel guess or
// sequential) it took.
func TestReadPartMapRandom(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(11, 11))
	for range 40 {
		n := 1 + rng.IntN(6)
		var nums, sizes []int
		num := 0
		for i := range n {
			num += 1 + rng.IntN(2)*rng.IntN(3)
			nums = append(nums, num)
			switch {
			case rng.IntN(2) == 0 && i > 0:
				sizes = append(sizes, sizes[0])
			default:
				sizes = append(sizes, rng.IntN(3*S))
			}
		}
		u := newUpload(t, 2, "b", "k", nums, sizes, rng.Uint64())
		pm, err := ReadPartMap(n, int64(len(u.body())), bodyFetcher(u.body()))
		if err != nil {
			t.Fatalf("%v %v: %v", nums, sizes, err)
		}
		for i := range n {
			if num, _, pl, _ := pm.Part(i); num != nums[i] || pl != int64(sizes[i]) {
				t.Fatalf("%v %v: part %d is %d, %d", nums, sizes, i, num, pl)
			}
		}
	}
}
