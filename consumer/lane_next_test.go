package consumer

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scriptedIterator answers Next from a script, recording whether each call had a max wait.
type scriptedIterator struct {
	jetstream.MessagesContext
	answers []error
	bounded []bool
}

func (s *scriptedIterator) Next(opts ...jetstream.NextOpt) (jetstream.Msg, error) {
	s.bounded = append(s.bounded, len(opts) > 0)
	err := s.answers[0]
	s.answers = s.answers[1:]
	return nil, err
}

// A first wait that times out is followed by an unbounded one: the iterator then decides again
// whether to send its next pull request (the first Next may have found the write of the last one
// still going on, and would otherwise wait on an empty buffer until heartbeats are missed).
func TestNextMsgWaitsAgainAfterAShortWait(t *testing.T) {
	it := &scriptedIterator{answers: []error{nats.ErrTimeout, nil}}
	_, err := nextMsg(it)
	require.NoError(t, err)
	assert.Equal(t, []bool{true, false}, it.bounded, "a bounded wait, then an unbounded one")

	// Any other outcome of the first wait is the answer.
	it = &scriptedIterator{answers: []error{jetstream.ErrMsgIteratorClosed}}
	_, err = nextMsg(it)
	require.ErrorIs(t, err, jetstream.ErrMsgIteratorClosed)
	assert.Len(t, it.bounded, 1)
}
