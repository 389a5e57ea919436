package handlers_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/schema"
)

// listPart is one decoded reply part of a listing.
type listPart struct {
	number int
	final  bool
	env    schema.Reply[schema.ListResult]
}

// listParts collects c's parts and checks what every part must be, empty ones included:
// numbered 1..n in the B2-Part header and the body, only the last one final, all ok and of
// the first delivery.
func listParts(t *testing.T, c *call, timeout time.Duration) []listPart {
	t.Helper()
	msgs := c.replies(t, timeout)
	require.Zero(t, c.restarts, "the listing was not redelivered")
	out := make([]listPart, len(msgs))
	for i, msg := range msgs {
		env := decodeMsg[schema.ListResult](t, msg)
		require.True(t, env.OK, "%+v", env.Error)
		last := i == len(msgs)-1
		assert.Equal(t, strconv.Itoa(i+1), msg.Header.Get(schema.HeaderPart))
		assert.Equal(t, strconv.FormatBool(last), msg.Header.Get(schema.HeaderFinal))
		assert.Equal(t, i+1, env.Result.Part)
		assert.Equal(t, last, env.Result.Final)
		assert.Equal(t, 1, env.Attempt)
		assert.NotNil(t, env.Result.Files, "files is [], never null")
		if !last {
			assert.Nil(t, env.Result.Count, "count and pages are on the final part only")
			assert.Nil(t, env.Result.Pages)
			assert.NotContains(t, string(msg.Data), "nextFileName", "only the final part says where the listing stands")
		}
		out[i] = listPart{number: i + 1, final: last, env: env}
	}
	return out
}

func fileNames(p listPart) []string {
	var out []string
	for _, f := range p.env.Result.Files {
		out = append(out, f.FileName)
	}
	return out
}

// A sparse match over a listing of many pages sends one part per page, those whose names the
// glob filtered away included, so the publisher hears from the listing after every B2 call
// instead of after ~1 MB of matches. pages on the final part counts the B2 calls.
func TestPipelineSparseMatchSendsOnePartPerPage(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.startWorker(t)
	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf("logs/%03d.txt", i))
	}
	// Three matches, on pages 1, 4 and 8 of ten names each (sorted: "017.csv" < "017.txt").
	names = append(names, "logs/005.csv", "logs/031.csv", "logs/077.csv")
	p.fake.AddFiles(e2eBucket, names...)
	id, _ := p.fake.BucketID(e2eBucket)

	before := p.fake.Calls(b2test.EndpointListFileNames)
	for _, codec := range []schema.Codec{schema.JSON, schema.Msgpack} {
		t.Run(codec.ContentType(), func(t *testing.T) {
			callsBefore := p.fake.Calls(b2test.EndpointListFileNames)
			c := p.request(t, schema.OpListFileNames, "", codec, map[string]any{
				"bucketName": e2eBucket, "match": "logs/*.csv", "allPages": true, "maxFileCount": 10})
			parts := listParts(t, c, 20*time.Second)
			calls := p.fake.Calls(b2test.EndpointListFileNames) - callsBefore

			// 103 names in pages of 10: ten full pages, then the page of three whose null
			// nextFileName ends the listing.
			require.Len(t, parts, 11, "one part per page, empty pages included")
			assert.Equal(t, 11, calls)
			want := map[int][]string{1: {"logs/005.csv"}, 4: {"logs/031.csv"}, 8: {"logs/077.csv"}}
			for _, part := range parts {
				assert.Equal(t, want[part.number], fileNames(part), "part %d holds the matches of page %d", part.number, part.number)
				assert.Equal(t, id, part.env.Result.BucketID)
			}
			final := parts[len(parts)-1].env.Result
			assert.Equal(t, 3, *final.Count)
			assert.Equal(t, calls, *final.Pages, "pages counts the B2 calls that returned a page")
			assert.Nil(t, final.NextFileName)
		})
	}
	require.Equal(t, 22, p.fake.Calls(b2test.EndpointListFileNames)-before)

	// A match-free page that is also the last one is the final part, without files.
	c := p.request(t, schema.OpListFileNames, "", schema.JSON, map[string]any{
		"bucketName": e2eBucket, "match": "logs/*.none", "allPages": true, "maxFileCount": 50})
	parts := listParts(t, c, 20*time.Second)
	require.Len(t, parts, 3, "103 names in pages of 50")
	for _, part := range parts {
		assert.Empty(t, part.env.Result.Files)
	}
	assert.Equal(t, 0, *parts[2].env.Result.Count)
	assert.Equal(t, 3, *parts[2].env.Result.Pages)
}

// While a B2 page call takes longer than the progress interval, the worker sends empty progress
// parts, numbered like the others, so a publisher whose timeout runs per part can tell a slow
// listing from a dead worker; count and pages on the final part are not changed by them.
func TestPipelineSlowPagesSendProgressParts(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.progress = 50 * time.Millisecond
	p.startWorker(t)
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("slow/%02d", i))
	}
	p.fake.AddFiles(e2eBucket, names...)
	// Every page call is many progress intervals long, well within the client's call timeout.
	p.fake.SetLatency(b2test.EndpointListFileNames, 600*time.Millisecond)

	c := p.request(t, schema.OpListFileNames, "", schema.Msgpack, map[string]any{
		"bucketName": e2eBucket, "prefix": "slow/", "allPages": true, "maxFileCount": 10})
	parts := listParts(t, c, 30*time.Second)

	// Three full pages, then the empty page that ends the listing (the final part). Every other
	// part without files is a progress part, and at least one came before each page's part.
	var got []string
	progressBefore, pages := 0, 0
	for _, part := range parts {
		files := fileNames(part)
		if len(files) == 0 && !part.final {
			progressBefore++
			continue
		}
		pages++
		assert.GreaterOrEqual(t, progressBefore, 1, "a progress part came before the part of page %d", pages)
		progressBefore = 0
		if !part.final {
			assert.Len(t, files, 10, "a page is one part")
		}
		got = append(got, files...)
	}
	assert.Equal(t, 4, pages)
	assert.Equal(t, names, got, "every name exactly once, in order")
	final := parts[len(parts)-1].env.Result
	assert.Equal(t, 30, *final.Count, "progress parts carry no files and change no count")
	assert.Equal(t, 4, *final.Pages, "progress parts are not pages")
	assert.Nil(t, final.NextFileName)
	c.noMoreReplies(t, 200*time.Millisecond)

	// A single-page request is one B2 call and gets no progress parts: its reply stays one
	// message for a publisher that reads one.
	c = p.request(t, schema.OpListFileNames, "", schema.JSON, map[string]any{
		"bucketName": e2eBucket, "prefix": "slow/", "maxFileCount": 10})
	env, msg := one[schema.ListResult](t, c, 10*time.Second)
	require.True(t, env.OK)
	assert.Len(t, env.Result.Files, 10)
	assert.Equal(t, "1", msg.Header.Get(schema.HeaderPart))
	c.noMoreReplies(t, 200*time.Millisecond)
}

// The first progress part can come before B2 has named the bucket: its bucketId is then empty,
// and the page parts carry the id.
func TestPipelineProgressPartBeforeFirstPage(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.progress = 50 * time.Millisecond
	p.startWorker(t)
	p.fake.AddFiles(e2eBucket, "first/a", "first/b")
	id, _ := p.fake.BucketID(e2eBucket)
	p.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Latency: 600 * time.Millisecond, Times: 2, Prefix: "first/"})
	for _, body := range []map[string]any{
		{"bucketName": e2eBucket, "prefix": "first/", "allPages": true},
		{"bucketId": id, "prefix": "first/", "allPages": true},
	} {
		c := p.request(t, schema.OpListFileNames, "", schema.JSON, body)
		parts := listParts(t, c, 20*time.Second)
		last := parts[len(parts)-1]
		assert.Equal(t, []string{"first/a", "first/b"}, fileNames(last))
		assert.Equal(t, id, last.env.Result.BucketID)
		assert.Equal(t, 1, *last.env.Result.Pages)
		require.Greater(t, len(parts), 1, "the slow first page got progress parts")
		for _, part := range parts[:len(parts)-1] {
			assert.Empty(t, part.env.Result.Files)
			if _, byName := body["bucketName"]; byName {
				assert.Empty(t, part.env.Result.BucketID, "not known before the first page")
			} else {
				assert.Equal(t, id, part.env.Result.BucketID, "a request by id names it from the start")
			}
		}
	}
}
