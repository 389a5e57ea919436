package ops

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

func TestPurge(t *testing.T) {
	e := newEnv(t)
	a1 := e.publishDeadLetter(dl{op: schema.OpAuthorize})
	l1 := e.publishDeadLetter(dl{op: schema.OpListFileNames, account: "acme"})
	a2 := e.publishDeadLetter(dl{op: schema.OpAuthorize, account: "acme", code: schema.CodeInternal})
	l2 := e.publishDeadLetter(dl{op: schema.OpListFileNames})

	n, err := e.ops.Purge(e.ctx, Filter{}, false)
	require.ErrorIs(t, err, ErrNoSelection)
	assert.Zero(t, n)

	// By sequence; a missing one is reported after the others are deleted.
	n, err = e.ops.Purge(e.ctx, Filter{Seqs: []uint64{a1, 999}}, false)
	require.ErrorIs(t, err, ErrNotFound)
	assert.Equal(t, 1, n)
	assert.False(t, e.exists(schema.StreamDLQ, a1))

	// All matching a filter.
	n, err = e.ops.Purge(e.ctx, Filter{Op: schema.OpListFileNames}, true)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	left, err := e.ops.DeadLetters(e.ctx, Filter{})
	require.NoError(t, err)
	assert.Equal(t, []uint64{a2}, seqs(left))
	assert.False(t, e.exists(schema.StreamDLQ, l1))
	assert.False(t, e.exists(schema.StreamDLQ, l2))

	// A code filter that matches nothing deletes nothing.
	n, err = e.ops.Purge(e.ctx, Filter{Code: schema.CodeUnauthorized}, true)
	require.NoError(t, err)
	assert.Zero(t, n)

	// Everything.
	e.publishDeadLetter(dl{op: schema.OpListFileNames, account: "other"})
	n, err = e.ops.Purge(e.ctx, Filter{}, true)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Zero(t, e.count(schema.StreamDLQ))
}
