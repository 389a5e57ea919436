package consumer

import (
	"errors"

	"github.com/nats-io/nats.go"
)

// ErrRepliesUnconfirmed is returned (wrapped) when a delivery's core replies may not have reached
// the server: the connection was lost, or is being re-established, since the first of them was
// published. A core publish written to a socket that then dies is lost without an error, while
// what is published after nats.go notices (the ack, a checkpoint) is buffered and delivered on the
// new connection; acking, or checkpointing past those replies, would then answer a request with
// parts missing. The delivery is retried instead (a listing resumes from its last checkpoint,
// which covers only replies confirmed this way).
var ErrRepliesUnconfirmed = errors.New("consumer: the connection was lost after replies were published")

// continuity tells whether core publishes made since a point are known to have reached the
// server: TCP keeps one connection's bytes in order, so anything the server answered (a PubAck, an
// ack's delivery) after them on the same connection proves they arrived; a reconnect in between
// proves nothing.
type continuity struct {
	nc      *nats.Conn
	pending bool   // core replies were published since the last confirm
	since   uint64 // the connection's reconnect count when the first of them was published
}

// published records a core publish.
func (c *continuity) published() {
	if !c.pending {
		c.pending, c.since = true, c.nc.Stats().Reconnects
	}
}

// check reports ErrRepliesUnconfirmed when the connection is not the one the pending publishes
// went out on, or is not connected now (they may sit in a dead socket).
func (c *continuity) check() error {
	if c == nil || !c.pending {
		return nil
	}
	if !c.nc.IsConnected() || c.nc.Stats().Reconnects != c.since {
		return ErrRepliesUnconfirmed
	}
	return nil
}

// confirm marks the pending publishes as arrived: the caller got an answer from the server after
// them on an unchanged connection (check before and after that round trip).
func (c *continuity) confirm() {
	if c != nil {
		c.pending = false
	}
}
