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
