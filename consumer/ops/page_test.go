package ops

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

// pageAll follows the pages of f of size and returns every sequence, in the order read.
func pageAll(t *testing.T, e *env, f Filter, size int) []uint64 {
	t.Helper()
	var out []uint64
	before := uint64(0)
	for range 1000 {
		p, err := e.ops.DeadLetterPage(e.ctx, f, before, size)
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.DeadLetters), size)
		out = append(out, seqs(p.DeadLetters)...)
		if p.Next == 0 {
			return out
		}
		require.NotEmpty(t, p.DeadLetters, "a page with a next page is not empty")
		before = p.Next
	}
	t.Fatal("pages do not end")
	return nil
}

func TestDeadLetterPage(t *testing.T) {
	e := newEnv(t)
	const auth, list = schema.OpAuthorize, schema.OpListFileNames
	// More than one walk's range of sequences, with the rare operation at both ends and in
	// between, so that pages cross ranges and sparse ones skip empty ranges.
	var all, rare []uint64
	for i := range 2*firstPageChunk + 40 {
		d := dl{op: list, account: "acme"}
		if i == 0 || i == 300 || i == 2*firstPageChunk+39 {
			d = dl{op: auth, code: schema.CodeUnauthorized}
		}
		seq := e.publishDeadLetter(d)
		all = append([]uint64{seq}, all...)
		if d.op == auth {
			rare = append([]uint64{seq}, rare...)
		}
	}

	assert.Equal(t, all, pageAll(t, e, Filter{}, 50), "every dead letter once, newest first")
	assert.Equal(t, all, pageAll(t, e, Filter{}, MaxPageSize))
	assert.Equal(t, rare, pageAll(t, e, Filter{Op: auth}, 1))
	assert.Equal(t, rare, pageAll(t, e, Filter{Code: schema.CodeUnauthorized}, 2))
	assert.Equal(t, rare[1:], pageAll(t, e, Filter{Op: auth, MaxSeq: rare[0] - 1}, 2))

	p, err := e.ops.DeadLetterPage(e.ctx, Filter{}, 0, 3)
	require.NoError(t, err)
	assert.Equal(t, all[:3], seqs(p.DeadLetters))
	assert.Equal(t, all[2], p.Next)

	t.Run("since stops at older dead letters", func(t *testing.T) {
		// Since is relative to when the page is read: half a second of slack on either side
		// keeps a loaded machine's delays from moving the cutoff past either dead letter.
		mid := time.Now()
		time.Sleep(time.Second)
		newer := e.publishDeadLetter(dl{op: auth})
		got := pageAll(t, e, Filter{Since: time.Since(mid) - 500*time.Millisecond}, 10)
		assert.Equal(t, []uint64{newer}, got)
	})

	t.Run("invalid", func(t *testing.T) {
		for _, c := range []struct {
			f    Filter
			size int
		}{{Filter{}, 0}, {Filter{}, MaxPageSize + 1}, {Filter{Limit: 2}, 10}, {Filter{Seqs: []uint64{1}}, 10}, {Filter{Op: "a.b"}, 10}} {
			_, err := e.ops.DeadLetterPage(e.ctx, c.f, 0, c.size)
			require.ErrorIs(t, err, ErrInvalidOptions, "%+v", c)
		}
	})
}

func TestDeadLetterPageEmptyStream(t *testing.T) {
	e := newEnv(t)
	p, err := e.ops.DeadLetterPage(e.ctx, Filter{}, 0, 10)
	require.NoError(t, err)
	assert.Empty(t, p.DeadLetters)
	assert.Zero(t, p.Next)
}

// MaxSeq keeps a confirmed bulk redrive to what its dry run counted.
func TestRedriveMaxSeq(t *testing.T) {
	e := newEnv(t)
	s1 := e.publishDeadLetter(dl{op: schema.OpAuthorize})
	s2 := e.publishDeadLetter(dl{op: schema.OpAuthorize})
	res, err := e.ops.Redrive(e.ctx, RedriveOptions{Filter: Filter{MaxSeq: s1}, All: true, DryRun: true})
	require.NoError(t, err)
	require.Len(t, res, 1)
	assert.Equal(t, s1, res[0].Seq)
	got, err := e.ops.DeadLetters(e.ctx, Filter{MaxSeq: s2})
	require.NoError(t, err)
	assert.Equal(t, []uint64{s2, s1}, seqs(got))
}
