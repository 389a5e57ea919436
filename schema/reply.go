package schema

// Error is the error object of a failed reply.
type Error struct {
	// Code is one of the Code* constants.
	Code string `json:"code" msgpack:"code"`
	// Message is human-readable and never contains keys or tokens.
	Message string `json:"message" msgpack:"message"`
	// Retryable tells the publisher whether sending the same request again may succeed.
	Retryable bool `json:"retryable" msgpack:"retryable"`
	// B2Status and B2Code are B2's HTTP status and error code, when B2 answered.
	B2Status int    `json:"b2Status,omitempty" msgpack:"b2Status,omitempty"`
	B2Code   string `json:"b2Code,omitempty" msgpack:"b2Code,omitempty"`
}

// Reply is the envelope of every reply message; T is AuthorizeResult or ListResult.
type Reply[T any] struct {
	// ID is the request id.
	ID string `json:"id" msgpack:"id"`
	// Op is OpAuthorize or OpListFileNames.
	Op string `json:"op" msgpack:"op"`
	// OK is true when Result is set, false when Error is.
	OK     bool   `json:"ok" msgpack:"ok"`
	Result *T     `json:"result,omitempty" msgpack:"result,omitempty"`
	Error  *Error `json:"error,omitempty" msgpack:"error,omitempty"`
	// Attempt is the delivery of the request that produced this reply, from 1.
	Attempt int `json:"attempt" msgpack:"attempt"`
	// DurationMs is the time spent on this delivery, in milliseconds.
	DurationMs int64 `json:"durationMs" msgpack:"durationMs"`
}

// AuthorizeResult is the result of an authorize reply. It carries a live token.
type AuthorizeResult struct {
	AccountID          string `json:"accountId" msgpack:"accountId"`
	AuthorizationToken string `json:"authorizationToken" msgpack:"authorizationToken"`
	APIURL             string `json:"apiUrl" msgpack:"apiUrl"`
	DownloadURL        string `json:"downloadUrl" msgpack:"downloadUrl"`
	S3APIURL           string `json:"s3ApiUrl" msgpack:"s3ApiUrl"`
	// RecommendedPartSize and AbsoluteMinimumPartSize are in bytes.
	RecommendedPartSize     int64   `json:"recommendedPartSize" msgpack:"recommendedPartSize"`
	AbsoluteMinimumPartSize int64   `json:"absoluteMinimumPartSize" msgpack:"absoluteMinimumPartSize"`
	Allowed                 Allowed `json:"allowed" msgpack:"allowed"`
	// ExpiresAt (RFC 3339) is when the cached session will be refreshed.
	ExpiresAt string `json:"expiresAt" msgpack:"expiresAt"`
	// Cached is true when no B2 call was made for this request.
	Cached bool `json:"cached" msgpack:"cached"`
}

// Allowed describes what the application key may do.
type Allowed struct {
	Capabilities []string `json:"capabilities" msgpack:"capabilities"`
	BucketID     string   `json:"bucketId,omitempty" msgpack:"bucketId,omitempty"`
	BucketName   string   `json:"bucketName,omitempty" msgpack:"bucketName,omitempty"`
	NamePrefix   string   `json:"namePrefix,omitempty" msgpack:"namePrefix,omitempty"`
	// Buckets lists the buckets of a multi-bucket key.
	Buckets []AllowedBucket `json:"buckets,omitempty" msgpack:"buckets,omitempty"`
}

// AllowedBucket is one bucket of a multi-bucket key.
type AllowedBucket struct {
	ID   string `json:"id" msgpack:"id"`
	Name string `json:"name" msgpack:"name"`
}
