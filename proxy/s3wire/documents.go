package s3wire

import (
	"encoding/xml"
	"strings"
)

// The S3 documents the proxy writes or reads whole.

// NS is the S3 XML namespace.
const NS = "http://s3.amazonaws.com/doc/2006-03-01/"

// CopyObjectResult answers CopyObject.
type CopyObjectResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	XMLNS        string   `xml:"xmlns,attr,omitempty"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
	Checksums
}

// CopyPartResult answers UploadPartCopy.
type CopyPartResult struct {
	XMLName      struct{} `xml:"CopyPartResult"`
	XMLNS        string   `xml:"xmlns,attr,omitempty"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

// CompleteMultipartUpload is the body of a CompleteMultipartUpload.
type CompleteMultipartUpload struct {
	XMLName xml.Name       `xml:"CompleteMultipartUpload"`
	Parts   []CompletePart `xml:"Part"`
}

type CompletePart struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`
	// The client's checksum of the part's plaintext, if it sent one.
	Checksums
}

// CompleteMultipartUploadResult answers CompleteMultipartUpload.
type CompleteMultipartUploadResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	XMLNS    string   `xml:"xmlns,attr,omitempty"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
	Checksums
}

// TimeFormat is how S3 writes LastModified in documents.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Checksums are the checksum elements of S3's documents. The proxy writes
// only checksums of the plaintext, its own or the client's: a store's are
// of the ciphertext, and a document read from the store has them cleared
// (Clear) before any of it reaches a client.
type Checksums struct {
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
	ChecksumType      string `xml:"ChecksumType,omitempty"`
}

// field is the element of the x-amz-checksum-* header name h (any case);
// nil for another name.
func (c *Checksums) field(h string) *string {
	switch strings.ToLower(h) {
	case "x-amz-checksum-crc32":
		return &c.ChecksumCRC32
	case "x-amz-checksum-crc32c":
		return &c.ChecksumCRC32C
	case "x-amz-checksum-crc64nvme":
		return &c.ChecksumCRC64NVME
	case "x-amz-checksum-sha1":
		return &c.ChecksumSHA1
	case "x-amz-checksum-sha256":
		return &c.ChecksumSHA256
	}
	return nil
}

// Get is the value of the checksum the header name h stands for.
func (c *Checksums) Get(h string) string {
	if f := c.field(h); f != nil {
		return *f
	}
	return ""
}

// Set sets the checksums named by header names in m, and the type.
func (c *Checksums) Set(m map[string]string, typ string) {
	for h, v := range m {
		if f := c.field(h); f != nil {
			*f = v
		}
	}
	if len(m) > 0 {
		c.ChecksumType = typ
	}
}

// Clear removes every checksum.
func (c *Checksums) Clear() { *c = Checksums{} }
