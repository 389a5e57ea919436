package ops

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/textproto"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// ErrDuplicateMismatch is wrapped by the error about a redrive or replay that the request stream
// dropped as a duplicate of a stored message that is not the one published: someone else
// published with that Nats-Msg-Id inside the duplicate window. Nothing was republished, so a dead
// letter is kept.
var ErrDuplicateMismatch = errors.New("ops: another publisher used the message id")

// publishAttempts bounds the publishes of one redrive or replay when the PubAck does not come
// back in time: the same message id is used again, so a publish that did land is stored once.
const publishAttempts = 3

// newRunID returns the random part of the message ids of one Ops. Tenants share the request
// stream and its duplicate window, so an id they can predict lets them pre-empt the republish
// (the stream would drop it as a duplicate of their junk); 128 random bits they cannot. Within
// one Ops the part is fixed, so a retried publish still deduplicates.
func newRunID() string { return rand.Text() }

// publishVerified publishes msg, whose Nats-Msg-Id header is set, to the request stream, retrying
// a publish whose PubAck timed out. When the stream reports a duplicate, it reads the stored
// message at the PubAck's sequence and returns an error wrapping ErrDuplicateMismatch unless it is
// msg (subject, data and every header msg carries): a duplicate only counts as done when it is
// this very republish, stored by an earlier attempt.
func (o *Ops) publishVerified(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	var (
		ack *jetstream.PubAck
		err error
	)
	for range publishAttempts {
		ack, err = o.js.PublishMsg(ctx, msg)
		if err == nil || ctx.Err() != nil || !isTimeout(err) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if ack.Duplicate && ack.Stream == o.cfg.RequestsStream {
		if err := o.verifyStored(ctx, ack.Sequence, msg); err != nil {
			return ack, err
		}
	}
	return ack, nil
}

// isTimeout reports whether a publish failed for want of a PubAck in time (it may have landed).
func isTimeout(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// verifyStored checks that the request stream's message at seq is msg.
func (o *Ops) verifyStored(ctx context.Context, seq uint64, msg *nats.Msg) error {
	id := msg.Header.Get(schema.HeaderMsgID)
	st, err := o.js.Stream(ctx, o.cfg.RequestsStream)
	if err != nil {
		return fmt.Errorf("ops: duplicate of %s: stream %s: %w", id, o.cfg.RequestsStream, err)
	}
	stored, err := st.GetMsg(ctx, seq)
	if err != nil {
		// Gone (expired, deleted) or unreadable: it cannot be shown to be this republish.
		return fmt.Errorf("ops: stream %s dropped message id %s as a duplicate of message %d, which cannot be read to verify it: %w",
			o.cfg.RequestsStream, id, seq, err)
	}
	if diff := differs(stored, msg); diff != "" {
		return fmt.Errorf("%w %s inside the duplicate window: message %d of stream %s has another %s, so nothing was republished",
			ErrDuplicateMismatch, id, seq, o.cfg.RequestsStream, diff)
	}
	return nil
}

// differs names the first part in which stored is not sent ("" when none): "subject", "payload"
// or "header <name>". Header values are compared as the client puts them on the wire (trimmed,
// line breaks as spaces); headers the server adds to a direct get are ignored.
func differs(stored *jetstream.RawStreamMsg, sent *nats.Msg) string {
	if stored.Subject != sent.Subject {
		return "subject"
	}
	if !bytes.Equal(stored.Data, sent.Data) {
		return "payload"
	}
	got := cleanHeader(stored.Header)
	keys := make([]string, 0, len(got)+len(sent.Header))
	for k := range got {
		keys = append(keys, k)
	}
	for k := range sent.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if !slices.Equal(wireValues(got[k]), wireValues(sent.Header[k])) {
			return "header " + k
		}
	}
	return ""
}

// wireNewlines is how nats.go writes line breaks in header values.
var wireNewlines = strings.NewReplacer("\r", " ", "\n", " ")

// wireValues returns vs as nats.go writes header values.
func wireValues(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = wireNewlines.Replace(textproto.TrimString(v))
	}
	return out
}
