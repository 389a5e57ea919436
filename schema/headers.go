package schema

// Header names of the wire contract.
const (
	HeaderContentType = "Content-Type"
	HeaderReplyTo     = "Reply-To"
	HeaderMsgID       = "Nats-Msg-Id"
	HeaderTraceParent = "traceparent"
	HeaderRequestID   = "B2-Request-Id"
	HeaderStatus      = "B2-Status"
	HeaderPart        = "B2-Part"
	HeaderFinal       = "B2-Final"

	// Dead-letter headers added by the worker.
	HeaderOriginalMsgID   = "B2-Original-Msg-Id"
	HeaderErrorCode       = "B2-Error-Code"
	HeaderError           = "B2-Error"
	HeaderAttempts        = "B2-Attempts"
	HeaderOriginalSubject = "B2-Original-Subject"
	HeaderStreamSeq       = "B2-Stream-Seq"
	HeaderFailedAt        = "B2-Failed-At"
	// HeaderAttempt has one value per failed attempt, oldest first:
	// "<attempt> <RFC 3339 time> <code> [b2=<status>/<code>] [retry-after=<d>] [delay=<d>]".
	HeaderAttempt = "B2-Attempt"
	// HeaderDroppedHeaders names, comma-separated, the request headers a dead letter does not
	// carry because they cannot be published safely: NATS control headers (Nats-*), values over
	// their limit, and headers past the dead letter's header budget. Absent when none was dropped.
	HeaderDroppedHeaders = "B2-Dropped-Headers"

	// Headers added by the operator tools (b2jet dlq redrive, b2jet replay). Workers ignore them.
	// HeaderRedriveOf is the dead letter's sequence in the dead-letter stream, on a redriven
	// request; HeaderRedriveCount how many times the request has been redriven (1 on the first
	// redrive; a dead letter keeps the request's headers, so the count survives a new failure);
	// HeaderReplayOf the original request's sequence in the request stream, on a replayed one.
	HeaderRedriveOf    = "B2-Redrive-Of"
	HeaderRedriveCount = "B2-Redrive-Count"
	HeaderReplayOf     = "B2-Replay-Of"
)

// Values of B2-Status.
const (
	StatusOK    = "ok"
	StatusError = "error"
)

// Content types. A message without Content-Type is msgpack.
const (
	ContentTypeMsgpack = "application/msgpack"
	ContentTypeJSON    = "application/json"
)

// Operations.
const (
	OpAuthorize     = "authorize"
	OpListFileNames = "list_file_names"
)

// DefaultAccount is the account used when a request subject names none.
const DefaultAccount = "default"

// Stream names.
const (
	StreamRequests = "B2_REQUESTS"
	StreamDLQ      = "B2_DLQ"
)

// BucketListings is the key-value bucket of the checkpoints of allPages listings in progress.
const BucketListings = "B2_LISTINGS"

// Error codes of the contract (the reply error's code and the dead letter's B2-Error-Code).
const (
	CodeInvalidRequest   = "invalid_request"
	CodeUnknownAccount   = "unknown_account"
	CodeBucketNotFound   = "bucket_not_found"
	CodeUnauthorized     = "unauthorized"
	CodeCapExceeded      = "cap_exceeded"
	CodeUnavailable      = "unavailable"
	CodeDeadlineExceeded = "deadline_exceeded"
	CodeInternal         = "internal"
)
