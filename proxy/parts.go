package proxy

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"

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
		err = pm.Verify(version, meta)
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
	out := upstream.NewRequest(http.MethodGet, rq.rawPath, rq.query)
	out.Header.Set("If-Match", storeTag)
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+envelope.PartHeaderSize-1))
	resp, err := s.up.Do(out)
	if err != nil {
		return nil, s3wire.Internal(err)
	}
	defer fasthttp.ReleaseResponse(resp)
	if st := resp.StatusCode(); st != http.StatusPartialContent {
		resp.CloseBodyStream()
		return nil, s3wire.Internal(fmt.Errorf("reading part header at %d: store answered %d", off, st))
	}
	buf := make([]byte, envelope.PartHeaderSize)
	_, err = io.ReadFull(upstream.Body(resp), buf)
	resp.CloseBodyStream()
	if err != nil {
		return nil, s3wire.Internal(fmt.Errorf("reading part header at %d: %w", off, err))
	}
	ph, err := envelope.ParsePartHeader(buf)
	if err != nil {
		return nil, s3wire.Damaged(err)
	}
	return ph, nil
}
