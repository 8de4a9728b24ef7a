// Package s3wire is what s3seal knows of the S3 wire protocol, apart from
// signatures (sigv4): which operation a request is and what each may do
// (Classify, Op.Spec), S3 errors and their XML, byte ranges, which headers
// are forwarded, dropped or sealed, the rewriting of the store's XML
// documents, and the ETag and upload id codecs. It is pure functions and
// data: no server, no client, no I/O.
package s3wire

// Op is an S3 operation, decided from method, path and query alone
// (Classify).
type Op int

const (
	Unsupported Op = iota
	ListBuckets
	BucketRead    // bodiless bucket request forwarded as is (HEAD, location, versioning, ...)
	BucketWrite   // bucket create/delete or configuration with a small XML body
	ListObjects   // V1 and V2: sizes and ETags rewritten
	ListVersions  // ListObjectVersions: sizes and ETags rewritten
	DeleteObjects // POST ?delete
	PutObject
	CopyObject
	GetObject
	HeadObject
	DeleteObject
	ObjectRead  // object subresources without object data: ?tagging, ?acl, ...
	ObjectWrite // object subresource configuration bodies: ?tagging, ?acl, ...
	CreateMultipart
	UploadPart
	UploadPartCopy
	CompleteMultipart
	AbortMultipart
	ListParts
	ListMultipartUploads
	GetAttributes
	PostObject // a browser form upload (POST to the bucket, multipart/form-data)
)

// Spec is what s3seal allows and forwards for one operation.
type Spec struct {
	Name string
	// Perm is what the caller's identity must hold.
	Perm Perm
	// Access is the permission the caller's identity must hold on the
	// bucket: reading objects and listings, writing objects, or
	// administering the bucket itself.
	Access Access
	// Anonymous: unsigned requests may call it on the buckets configured
	// for anonymous reading. Only reads of object data and listings are:
	// never a bucket's configuration (policy, ACL, versioning, location).
	Anonymous bool
	// Key is where the KMS key of what it writes comes from.
	Key KeyFrom
	// Body is what becomes of the request body.
	Body Body
}

// Perm is what an identity must hold to call an operation.
type Perm uint8

const (
	// PermBucket: the bucket the request names, if it names one (an
	// unsupported request may not).
	PermBucket Perm = iota
	// PermSigned: nothing but a verified signature; the operation names
	// no bucket.
	PermSigned
	// PermForm: the signature is in the form's fields, over its policy;
	// the handler verifies it, then the bucket as PermBucket does.
	PermForm
)

// Access is a permission an identity holds on a bucket. The levels do not
// nest: an identity granted only "admin" may configure a bucket but not
// read its objects.
type Access uint8

const (
	// AccessRead: read objects, their metadata and subresources, and list.
	AccessRead Access = iota
	// AccessWrite: create, overwrite and delete objects and uploads.
	AccessWrite
	// AccessAdmin: create and delete buckets and write their
	// configuration (policy, ACL, public-access block, replication,
	// notification, inventory, lifecycle, ...).
	AccessAdmin
)

func (a Access) String() string {
	switch a {
	case AccessRead:
		return "read"
	case AccessWrite:
		return "write"
	case AccessAdmin:
		return "admin"
	}
	return "unknown"
}

// KeyFrom says where the KMS key that seals what an operation writes
// comes from.
type KeyFrom uint8

const (
	// KeyBucket: the bucket's key. S3 honours no SSE request headers for
	// the operation, and s3seal ignores them too (they are never
	// forwarded).
	KeyBucket KeyFrom = iota
	// KeyHeaders: the SSE-KMS request headers may name another key.
	KeyHeaders
	// KeyUpload: the key chosen at CreateMultipartUpload, which the upload
	// id carries.
	KeyUpload
)

// Body says what becomes of a request body. The zero value refuses: an
// operation missing from the table forwards nothing.
type Body uint8

const (
	// BodyRefused: the request is answered NotImplemented, and nothing is
	// forwarded. Whatever s3seal cannot tell from object data is refused.
	BodyRefused Body = iota
	// BodyNone: a body is neither read nor forwarded.
	BodyNone
	// BodyConfig: a small configuration document, never object data: read
	// whole (at most MaxSmallBody), verified, then forwarded.
	BodyConfig
	// BodyObject: object data, encrypted on its way to the store.
	BodyObject
)

// specs is the table of operations: one row each, read by the proxy for
// authorization, anonymous access, key choice and body handling.
var specs = map[Op]Spec{
	Unsupported:          {Name: "Unsupported", Body: BodyRefused},
	ListBuckets:          {Name: "ListBuckets", Perm: PermSigned, Access: AccessRead, Body: BodyNone},
	BucketRead:           {Name: "BucketRead", Access: AccessRead, Body: BodyNone},
	BucketWrite:          {Name: "BucketWrite", Access: AccessAdmin, Body: BodyConfig},
	ListObjects:          {Name: "ListObjects", Access: AccessRead, Anonymous: true, Body: BodyNone},
	ListVersions:         {Name: "ListObjectVersions", Access: AccessRead, Body: BodyNone},
	DeleteObjects:        {Name: "DeleteObjects", Access: AccessWrite, Body: BodyConfig},
	PutObject:            {Name: "PutObject", Access: AccessWrite, Key: KeyHeaders, Body: BodyObject},
	CopyObject:           {Name: "CopyObject", Access: AccessWrite, Key: KeyHeaders, Body: BodyNone},
	GetObject:            {Name: "GetObject", Access: AccessRead, Anonymous: true, Body: BodyNone},
	HeadObject:           {Name: "HeadObject", Access: AccessRead, Anonymous: true, Body: BodyNone},
	DeleteObject:         {Name: "DeleteObject", Access: AccessWrite, Body: BodyConfig},
	ObjectRead:           {Name: "ObjectRead", Access: AccessRead, Body: BodyNone},
	ObjectWrite:          {Name: "ObjectWrite", Access: AccessWrite, Body: BodyConfig},
	CreateMultipart:      {Name: "CreateMultipartUpload", Access: AccessWrite, Key: KeyHeaders, Body: BodyNone},
	UploadPart:           {Name: "UploadPart", Access: AccessWrite, Key: KeyUpload, Body: BodyObject},
	UploadPartCopy:       {Name: "UploadPartCopy", Access: AccessWrite, Key: KeyUpload, Body: BodyNone},
	CompleteMultipart:    {Name: "CompleteMultipartUpload", Access: AccessWrite, Body: BodyConfig},
	AbortMultipart:       {Name: "AbortMultipartUpload", Access: AccessWrite, Body: BodyNone},
	ListParts:            {Name: "ListParts", Access: AccessRead, Body: BodyNone},
	ListMultipartUploads: {Name: "ListMultipartUploads", Access: AccessRead, Body: BodyNone},
	GetAttributes:        {Name: "GetObjectAttributes", Access: AccessRead, Body: BodyNone},
	PostObject:           {Name: "PostObject", Perm: PermForm, Access: AccessWrite, Key: KeyHeaders, Body: BodyObject},
}

// Spec is the operation's row of specs.
func (o Op) Spec() Spec { return specs[o] }

func (o Op) String() string { return specs[o].Name }
