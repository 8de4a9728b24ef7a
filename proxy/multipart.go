package proxy

// multipart handles the multipart upload operations. They arrive with
// issue 6 (self-describing parts, DESIGN.md's part table); until then they
// are refused rather than forwarded, because a part forwarded as is would
// store plaintext.
func (s *Server) multipart(r *request) error {
	return errNotImplemented(r.op.String() + " through s3seal (multipart uploads are not implemented yet)")
}
