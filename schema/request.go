package schema

import "time"

// Limits of list_file_names requests.
const (
	// DefaultMaxFileCount is the page size when maxFileCount is 0 or absent.
	DefaultMaxFileCount = 1000
	// MaxMaxFileCount is the largest maxFileCount B2 accepts.
	MaxMaxFileCount = 10000
	// MaxNameBytes bounds prefix, startFileName, delimiter and match (B2 file names are at most
	// 1024 bytes of UTF-8).
	MaxNameBytes = 1024
	// MaxIDBytes bounds the request id, which travels in headers and every reply: it is
	// MaxRequestIDBytes, under its older name.
	MaxIDBytes = MaxRequestIDBytes
	// MaxBucketIDLen bounds bucketId.
	MaxBucketIDLen = 100
)

// AuthorizeRequest is the body of an authorize request. The empty request {} is valid.
type AuthorizeRequest struct {
	// ID is echoed in every reply; default: B2-Request-Id, else Nats-Msg-Id, else generated.
	ID string `json:"id,omitempty" msgpack:"id,omitempty"`
	// Deadline (RFC 3339): do not start B2 work after it; answer deadline_exceeded instead.
	Deadline string `json:"deadline,omitempty" msgpack:"deadline,omitempty"`
	// Force skips the cached session and calls b2_authorize_account now.
	Force bool `json:"force,omitempty" msgpack:"force,omitempty"`
}

// DeadlineTime returns the parsed deadline; false when there is none or it does not parse
// (Validate reports the latter).
func (r AuthorizeRequest) DeadlineTime() (time.Time, bool) { return parseDeadline(r.Deadline) }

// ListFileNamesRequest is the body of a list_file_names request.
type ListFileNamesRequest struct {
	// ID is echoed in every reply; default: B2-Request-Id, else Nats-Msg-Id, else generated.
	ID string `json:"id,omitempty" msgpack:"id,omitempty"`
	// Deadline (RFC 3339): do not start B2 work after it; answer deadline_exceeded instead.
	Deadline string `json:"deadline,omitempty" msgpack:"deadline,omitempty"`
	// BucketName or BucketID (exactly one) names the bucket.
	BucketName string `json:"bucketName,omitempty" msgpack:"bucketName,omitempty"`
	BucketID   string `json:"bucketId,omitempty" msgpack:"bucketId,omitempty"`
	// Prefix keeps only names that start with it.
	Prefix string `json:"prefix,omitempty" msgpack:"prefix,omitempty"`
	// Delimiter is B2's folder roll-up, usually "/".
	Delimiter string `json:"delimiter,omitempty" msgpack:"delimiter,omitempty"`
	// StartFileName is the resume point (a previous reply's nextFileName).
	StartFileName string `json:"startFileName,omitempty" msgpack:"startFileName,omitempty"`
	// MaxFileCount is the page size, 1..10000; 0 means DefaultMaxFileCount.
	MaxFileCount int `json:"maxFileCount,omitempty" msgpack:"maxFileCount,omitempty"`
	// AllPages follows nextFileName to the end, streaming every page as reply parts.
	AllPages bool `json:"allPages,omitempty" msgpack:"allPages,omitempty"`
	// Limit (with AllPages) stops after this many matching files; 0 means no limit.
	Limit int `json:"limit,omitempty" msgpack:"limit,omitempty"`
	// Match is a glob over the full file name (package glob).
	Match string `json:"match,omitempty" msgpack:"match,omitempty"`
}

// DeadlineTime returns the parsed deadline; false when there is none or it does not parse
// (Validate reports the latter).
func (r ListFileNamesRequest) DeadlineTime() (time.Time, bool) { return parseDeadline(r.Deadline) }

// PageSize returns MaxFileCount, or DefaultMaxFileCount when it is 0.
func (r ListFileNamesRequest) PageSize() int {
	if r.MaxFileCount == 0 {
		return DefaultMaxFileCount
	}
	return r.MaxFileCount
}

func parseDeadline(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// FormatTime formats t as the contract's times are written: RFC 3339 in UTC, with nanoseconds
// when t has them.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ParseTime parses an RFC 3339 time as written by FormatTime or any RFC 3339 producer.
func ParseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339, s) }
