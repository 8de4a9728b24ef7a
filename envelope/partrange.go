package envelope

// PartStoredRange is PartCipherRange for a part known only by its
// plaintext length (the part header, and so its segment size, follows from
// it): the proxy uses it to ask the store for exactly the bytes a range
// needs before it has read that part's header. An invalid length or range
// gives (0, 0).
func PartStoredRange(plainLen, off, n int64) (cipherOff, cipherLen int64) {
	seg := PartSegmentSize(plainLen)
	if seg == 0 {
		return 0, 0
	}
	return PartCipherRange(&PartHeader{plainLen: plainLen, segSize: seg}, off, n)
}
