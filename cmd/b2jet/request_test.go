package main

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

func listPart(attempt int, names ...string) schema.Reply[schema.ListResult] {
	res := &schema.ListResult{}
	for _, n := range names {
		res.Files = append(res.Files, schema.File{FileName: n, Action: "upload"})
	}
	return schema.Reply[schema.ListResult]{ID: "r1", Op: schema.OpListFileNames, OK: true, Result: res, Attempt: attempt}
}

func fileNames(files []schema.File) []string {
	out := []string{}
	for _, f := range files {
		out = append(out, f.FileName)
	}
	return out
}

func TestListCollector(t *testing.T) {
	type step struct {
		reply   schema.Reply[schema.ListResult]
		part    int
		final   bool
		printed []string
		done    bool
		err     string
	}
	tests := []struct {
		name  string
		steps []step
		count int
	}{
		{
			name: "single part",
			steps: []step{
				{reply: listPart(1, "a", "b"), part: 1, final: true, printed: []string{"a", "b"}, done: true},
			},
			count: 2,
		},
		{
			name: "several parts",
			steps: []step{
				{reply: listPart(1, "a", "b"), part: 1, printed: []string{"a", "b"}},
				{reply: listPart(1, "c"), part: 2, printed: []string{"c"}},
				{reply: listPart(1), part: 3, final: true, printed: []string{}, done: true},
			},
			count: 3,
		},
		{
			name: "a redelivery restarts the listing: names already printed are skipped",
			steps: []step{
				{reply: listPart(1, "a", "b"), part: 1, printed: []string{"a", "b"}},
				{reply: listPart(1, "c"), part: 2, printed: []string{"c"}},
				// attempt 1 died here; attempt 2 starts over
				{reply: listPart(2, "a", "b"), part: 1, printed: []string{}},
				{reply: listPart(2, "c", "d"), part: 2, printed: []string{"d"}},
				{reply: listPart(2, "e"), part: 3, final: true, printed: []string{"e"}, done: true},
			},
			count: 5,
		},
		{
			name: "late parts of an earlier attempt are ignored",
			steps: []step{
				{reply: listPart(1, "a"), part: 1, printed: []string{"a"}},
				{reply: listPart(2, "a"), part: 1, printed: []string{}},
				{reply: listPart(1, "b"), part: 2, printed: []string{}},
				{reply: listPart(2, "b"), part: 2, final: true, printed: []string{"b"}, done: true},
			},
			count: 2,
		},
		{
			name: "replies without attempt numbers",
			steps: []step{
				{reply: listPart(0, "a"), part: 1, printed: []string{"a"}},
				{reply: listPart(0, "b"), part: 2, final: true, printed: []string{"b"}, done: true},
			},
			count: 2,
		},
		{
			name: "a lost part is an error",
			steps: []step{
				{reply: listPart(1, "a"), part: 1, printed: []string{"a"}},
				{reply: listPart(1, "c"), part: 3, err: "reply part 3 arrived while part 2 was expected"},
			},
			count: 1,
		},
		{
			name: "a new attempt must start at part 1",
			steps: []step{
				{reply: listPart(1, "a"), part: 1, printed: []string{"a"}},
				{reply: listPart(2, "c"), part: 2, err: "reply part 2 of attempt 2 arrived without its part 1"},
			},
			count: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c listCollector
			for i, s := range tt.steps {
				files, done, err := c.add(s.reply, s.part, s.final)
				if s.err != "" {
					require.ErrorContains(t, err, s.err, "step %d", i)
					continue
				}
				require.NoError(t, err, "step %d", i)
				assert.Equal(t, s.printed, fileNames(files), "step %d", i)
				assert.Equal(t, s.done, done, "step %d", i)
			}
			assert.Equal(t, tt.count, c.summary().Count)
		})
	}
}

func TestPartOf(t *testing.T) {
	msg := nats.NewMsg("x")
	msg.Header.Set(schema.HeaderPart, "3")
	msg.Header.Set(schema.HeaderFinal, "true")
	part, final := partOf(msg, &schema.ListResult{Part: 1})
	assert.Equal(t, 3, part)
	assert.True(t, final)

	part, final = partOf(nats.NewMsg("x"), &schema.ListResult{Part: 2})
	assert.Equal(t, 2, part)
	assert.False(t, final)

	part, final = partOf(nats.NewMsg("x"), nil)
	assert.Equal(t, 1, part)
	assert.True(t, final)
}
