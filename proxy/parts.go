package proxy

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strconv"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/proxy/s3wire"
	"github.com/s3seal/s3seal/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// Reading a multipart object: its part map, verified against the sealed
// manifest before any plaintext is read (keys.go opens the parts).

// partMaps remembers verified part maps, by object version and header.
type partMaps struct {
	lru *lru.Cache[string, *envelope.PartMap]
}

func newPartMaps(size int) *partMaps {
	c, _ := lru.New[string, *envelope.PartMap](size) // size > 0
	return &partMaps{lru: c}
}

// partMapKey names one object version with one header: a header put back
// from another version of the object misses the cache and is checked anew.
func partMapKey(rq *readReq, storeTag, headerValue string) string {
	h := sha256.Sum256([]byte(headerValue))
	return rq.bucket + "\x00" + rq.key + "\x00" + storeTag + "\x00" + string(h[:])
}

// partMap returns the object's part map, verified against its sealed
// manifest: from the cache, or read from the part headers (one small
// request per part, in parallel when the parts are equal-sized) before any
// plaintext is read.
func (s *Server) partMap(rq *readReq, storeTag, headerValue string, stored int64, version int, meta *envelope.Meta) (*envelope.PartMap, error) {
	key := partMapKey(rq, storeTag, headerValue)
	if pm, ok := s.partMaps.lru.Get(key); ok {
		return pm, nil
	}
	pm, err := envelope.ReadPartMap(envelope.PartsInETag(storeTag), stored, func(off int64) (*envelope.PartHeader, error) {
		return s.readPartHeader(rq, storeTag, off)
	})
	if err == nil {
		// The header's compressed flag admits compressed parts (FORMAT.md
		// 12.2.3); the header was parsed and opened by the caller.
		var h *envelope.Header
		if h, err = envelope.ParseHeader(headerValue); err == nil {
			err = pm.VerifyFlags(version, h.Flags(), meta)
		}
	}
	if err != nil {
		return nil, s3wire.Damaged(fmt.Errorf("%s/%s: %w", rq.bucket, rq.key, err))
	}
	s.partMaps.lru.Add(key, pm)
	return pm, nil
}

// readPartHeader fetches the part header at stored offset off of the
// object version storeTag.
func (s *Server) readPartHeader(rq *readReq, storeTag string, off int64) (*envelope.PartHeader, error) {
	buf, err := s.readStored(rq, storeTag, off, envelope.PartHeaderSize)
	if err != nil {
		return nil, err
	}
	ph, err := envelope.ParsePartHeader(buf)
	if err != nil {
		return nil, s3wire.Damaged(err)
	}
	return ph, nil
}

// readStored reads stored bytes [off, off+n) of the object version
// storeTag names (If-Match): a part header, a block index, n small.
func (s *Server) readStored(rq *readReq, storeTag string, off, n int64) ([]byte, error) {
	out := upstream.NewRequest(http.MethodGet, rq.rawPath, rq.query)
	out.Header.Set("If-Match", storeTag)
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	resp, err := s.up.Do(out)
	if err != nil {
		return nil, s3wire.Internal(err)
	}
	defer fasthttp.ReleaseResponse(resp)
	defer resp.CloseBodyStream()
	if st := resp.StatusCode(); st != http.StatusPartialContent {
		return nil, s3wire.Internal(fmt.Errorf("reading bytes %d-%d of %s/%s: store answered %d", off, off+n-1, rq.bucket, rq.key, st))
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(upstream.Body(resp), buf); err != nil {
		return nil, s3wire.Internal(fmt.Errorf("reading bytes %d-%d of %s/%s: %w", off, off+n-1, rq.bucket, rq.key, err))
	}
	return buf, nil
}

// partIndexes returns the block indexes of the compressed parts that a
// read of plaintext [off, off+n) starts or ends inside (FORMAT.md 12.2.3):
// from the cache (by object version, header and part), or by reading the
// part's header, checking it against the verified map, opening the part
// and fetching and opening its sealed index (the last bytes of its body).
// Reads that cover a compressed part whole need none.
func (s *Server) partIndexes(rq *readReq, pm *envelope.PartMap, storeTag, headerValue string, off, n int64, open envelope.PartOpener) (envelope.PartIndexes, error) {
	need, err := pm.NeedIndexes(off, n)
	if err != nil || len(need) == 0 {
		return nil, err
	}
	ix := envelope.PartIndexes{}
	base := partMapKey(rq, storeTag, headerValue) + "\x00part "
	for _, i := range need {
		key := base + strconv.Itoa(i)
		if idx, ok := s.indexes.Get(key); ok {
			ix[i] = idx
			continue
		}
		_, _, _, start := pm.Part(i)
		ph, err := s.readPartHeader(rq, storeTag, start)
		if err != nil {
			return nil, err
		}
		if err := pm.Check(i, ph); err != nil {
			return nil, s3wire.Damaged(fmt.Errorf("%s/%s: %w", rq.bucket, rq.key, err))
		}
		p, err := open(ph)
		if err != nil {
			return nil, err
		}
		idx, err := s.readPartIndex(rq, storeTag, pm, i, p)
		p.Close()
		if err != nil {
			return nil, err
		}
		s.indexes.Add(key, idx)
		ix[i] = idx
	}
	return ix, nil
}

// readPartIndex fetches and opens the block index of the i-th part, p.
func (s *Server) readPartIndex(rq *readReq, storeTag string, pm *envelope.PartMap, i int, p *envelope.Part) (*envelope.BlockIndex, error) {
	off, n, err := pm.IndexRange(i)
	if err != nil {
		return nil, s3wire.Internal(err)
	}
	body, err := s.readStored(rq, storeTag, off, n)
	if err != nil {
		return nil, err
	}
	idx, err := p.OpenIndex(body)
	if err != nil {
		return nil, s3wire.Damaged(fmt.Errorf("%s/%s: part %d: %w", rq.bucket, rq.key, i+1, err))
	}
	return idx, nil
}
