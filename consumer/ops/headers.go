package ops

import (
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// Headers added by redrive and replay; see package schema.
const (
	HeaderRedriveOf    = schema.HeaderRedriveOf
	HeaderRedriveCount = schema.HeaderRedriveCount
	HeaderReplayOf     = schema.HeaderReplayOf
)

// serverHeaders are added by the server to direct-get and republished messages; they describe
// the stored copy, not the message, and are removed before a record is shown or republished.
var serverHeaders = []string{
	jetstream.StreamHeader,       // Nats-Stream
	jetstream.SequenceHeader,     // Nats-Sequence
	jetstream.SubjectHeader,      // Nats-Subject
	jetstream.TimeStampHeaer,     // Nats-Time-Stamp
	jetstream.LastSequenceHeader, // Nats-Last-Sequence
	"Nats-Num-Pending",           // batched direct get
	"Nats-UpTo-Sequence",         // batched direct get
}

// publishOnceHeaders are checks and actions of the original publish (optimistic concurrency,
// rollup). Repeating them on a redrive or replay would refuse the republish or purge the subject,
// so they are not copied.
var publishOnceHeaders = []string{
	jetstream.ExpectedStreamHeader,          // Nats-Expected-Stream
	jetstream.ExpectedLastSeqHeader,         // Nats-Expected-Last-Sequence
	jetstream.ExpectedLastSubjSeqHeader,     // Nats-Expected-Last-Subject-Sequence
	jetstream.ExpectedLastSubjSeqSubjHeader, // Nats-Expected-Last-Subject-Sequence-Subject
	jetstream.ExpectedLastMsgIDHeader,       // Nats-Expected-Last-Msg-Id
	jetstream.MsgRollup,                     // Nats-Rollup
}

// republishHeader returns the headers a redrive or replay starts from: h without the
// server-added headers, the publish-once headers and the Nats-Msg-Id (the caller derives a new
// one).
func republishHeader(h nats.Header) nats.Header {
	out := cleanHeader(h)
	for _, k := range publishOnceHeaders {
		delete(out, k)
	}
	delete(out, schema.HeaderMsgID)
	return out
}

// cleanHeader returns a deep copy of h without the server-added headers; never nil.
func cleanHeader(h nats.Header) nats.Header {
	out := make(nats.Header, len(h))
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	for _, k := range serverHeaders {
		delete(out, k)
	}
	return out
}

// redriveCount reads B2-Redrive-Count: 0 when absent, an error when malformed.
func redriveCount(h nats.Header) (int, error) {
	v := h.Get(HeaderRedriveCount)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, &schema.DeadLetterError{Header: HeaderRedriveCount, Problem: "not a non-negative integer: " + strconv.Quote(v)}
	}
	return n, nil
}
