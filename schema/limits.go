package schema

// Limits on what one request may carry. A request over any of them is refused as
// invalid_request before any work is done for it: each bounds what a hostile publisher could
// otherwise make a worker hold, compute or publish (a Reply-To over the server's 4 KiB control
// line closes the worker's connection; a deeply nested body grows stacks without bound; an id is
// copied into every reply, log line and dead letter).
const (
	// MaxRequestIDBytes bounds a request id, from the body or from a header.
	MaxRequestIDBytes = 256
	// MaxReplyToBytes bounds the Reply-To subject.
	MaxReplyToBytes = 512
	// MaxAccountBytes bounds the account token of a request subject (and an account's name).
	MaxAccountBytes = 64
	// MaxHeaderBytes bounds the sum of a request's header names and values.
	MaxHeaderBytes = 16 << 10
	// MaxHeaderValues bounds the number of header values of a request.
	MaxHeaderValues = 64
	// MaxNestingDepth bounds how deeply arrays and maps nest in a request body.
	MaxNestingDepth = 32
	// MaxMatchBytes bounds a list request's match pattern (B2 file names have at most 1024 bytes).
	MaxMatchBytes = 1024
)
