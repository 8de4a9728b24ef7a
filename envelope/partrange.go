package envelope

// PartStoredRange is PartCipherRange for a part known only by its
// plaintext length (the part header, and so its segment size, follows from
// it): the proxy uses it to ask the store for exactly the bytes a range
// needs before it has read that part's header.
func PartStoredRange(plainLen, off, n int64) (cipherOff, cipherLen int64) {
	return PartCipherRange(&PartHeader{plainLen: plainLen, segSize: PartSegmentSize(plainLen)}, off, n)
}
