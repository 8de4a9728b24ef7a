package checksum

import "encoding/binary"

// CRC combination: the CRC of A||B from crc(A), crc(B) and len(B), without
// the data, as zlib's crc32_combine does it (multiplication modulo the
// polynomial, with x^(2^k) precomputed), for any reflected CRC of up to 64
// bits whose initial value and final XOR are all ones (CRC-32, CRC-32C,
// CRC-64/NVME): for those the ones cancel out and
// crc(A||B) = crc(A)·x^(8·len(B)) mod P  XOR  crc(B).

type crcPoly struct {
	poly  uint64     // reflected polynomial
	top   uint64     // x^0: the highest bit of the register
	pow   [64]uint64 // pow[k] = x^(2^k)
	bytes int
}

func newPoly(poly uint64, width int) *crcPoly {
	c := &crcPoly{poly: poly, top: 1 << (width - 1), bytes: width / 8}
	p := c.top >> 1 // x^1
	c.pow[0] = p
	for k := 1; k < len(c.pow); k++ {
		p = c.mult(p, p)
		c.pow[k] = p
	}
	return c
}

// mult is a·b modulo the polynomial (reflected bit order).
func (c *crcPoly) mult(a, b uint64) uint64 {
	var p uint64
	for m := c.top; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		if b&1 != 0 {
			b = b>>1 ^ c.poly
		} else {
			b >>= 1
		}
	}
	return p
}

// x2n is x^(n·2^k) modulo the polynomial.
func (c *crcPoly) x2n(n uint64, k int) uint64 {
	p := c.top // x^0
	for ; n != 0; n >>= 1 {
		if n&1 != 0 {
			p = c.mult(c.pow[k%len(c.pow)], p)
		}
		k++
	}
	return p
}

// combine is crc(A||B) from crc1 = crc(A), crc2 = crc(B), len2 = len(B).
func (c *crcPoly) combine(crc1, crc2 uint64, len2 int64) uint64 {
	if len2 <= 0 {
		return crc1 ^ crc2 // crc2 is the CRC of nothing: 0
	}
	return c.mult(c.x2n(uint64(len2), 3), crc1) ^ crc2
}

var (
	polyCRC32     = newPoly(0xedb88320, 32)
	polyCRC32C    = newPoly(0x82f63b78, 32)
	polyCRC64NVME = newPoly(0x9a6c9329ac4bc9b5, 64)
)

func polyOf(a Algorithm) *crcPoly {
	switch a {
	case CRC32:
		return polyCRC32
	case CRC32C:
		return polyCRC32C
	case CRC64NVME:
		return polyCRC64NVME
	}
	return nil
}

// Combine is the CRC (big-endian, as S3 encodes it) of the concatenation of
// the parts, from their CRCs and sizes. a must be a CRC and every Sum of
// its size.
func Combine(a Algorithm, parts []Part) []byte {
	c := polyOf(a)
	var crc uint64
	for i, p := range parts {
		v := decodeBE(p.Sum)
		if i == 0 {
			crc = v
			continue
		}
		crc = c.combine(crc, v, p.Size)
	}
	out := make([]byte, c.bytes)
	if c.bytes == 4 {
		binary.BigEndian.PutUint32(out, uint32(crc))
	} else {
		binary.BigEndian.PutUint64(out, crc)
	}
	return out
}

func decodeBE(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}
