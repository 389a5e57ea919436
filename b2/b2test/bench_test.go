package b2test_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
)

const million = 1_000_000

// millionNames returns 1,000,000 names in an order that is not sorted,
// spread over 1,000 "directories".
func millionNames() []string {
	names := make([]string, million)
	for i := range names {
		j := (i * 7919) % million // a permutation: 7919 is prime and does not divide 10^6
		names[i] = fmt.Sprintf("data/%03d/file-%07d.csv", j%1000, j)
	}
	return names
}

// loadMillion returns a fake with a million names in bucket "big", its id
// and a master token, with the index already sorted.
func loadMillion(tb testing.TB) (*b2test.Server, string, string) {
	tb.Helper()
	s := b2test.NewServer()
	tb.Cleanup(s.Close)
	id := s.CreateBucket("big")
	s.AddFiles("big", millionNames()...)
	require.Equal(tb, million, s.FileCount("big")) // sorts the index
	return s, id, authorize(tb, s, s.MasterKey())
}

// nextOf extracts nextFileName from the end of a list answer without
// decoding the files.
func nextOf(tb testing.TB, body []byte) *string {
	i := bytes.LastIndex(body, []byte(`"nextFileName":`))
	require.GreaterOrEqual(tb, i, 0)
	var next *string
	require.NoError(tb, json.Unmarshal(bytes.TrimRight(body[i+len(`"nextFileName":`):], "}\n"), &next))
	return next
}

// BenchmarkListFileNames1M pages through 1,000,000 names at maxFileCount
// 1000; one op is one page (the listing wraps around at the end).
func BenchmarkListFileNames1M(b *testing.B) {
	s, id, tok := loadMillion(b)
	b.Run("handler", func(b *testing.B) {
		h := s.Handler()
		start := ""
		for b.Loop() {
			q := url.Values{"bucketId": {id}, "maxFileCount": {"1000"}, "startFileName": {start}}
			req := httptest.NewRequest(http.MethodGet, "/b2api/v2/b2_list_file_names?"+q.Encode(), nil)
			req.Header.Set("Authorization", tok)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			start = ""
			if next := nextOf(b, rec.Body.Bytes()); next != nil {
				start = *next
			}
		}
		b.ReportMetric(1000, "names/op")
	})
	b.Run("http", func(b *testing.B) {
		start := ""
		for b.Loop() {
			r := call(b, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok,
				map[string]any{"bucketId": id, "maxFileCount": 1000, "startFileName": start})
			if r.status != http.StatusOK {
				b.Fatalf("status %d: %s", r.status, r.body)
			}
			start = ""
			if next := nextOf(b, r.body); next != nil {
				start = *next
			}
		}
		b.ReportMetric(1000, "names/op")
	})
}

// BenchmarkAddFiles1M measures loading 1,000,000 names and sorting them
// once; one op is the whole load.
func BenchmarkAddFiles1M(b *testing.B) {
	names := millionNames()
	for b.Loop() {
		s := b2test.NewServer()
		s.AddFiles("big", names...)
		if s.FileCount("big") != million {
			b.Fatal("lost names")
		}
		s.Close()
	}
}

// TestMillionNames checks a million-name bucket end to end: pages from
// anywhere in it are right and cost no scan of the bucket.
func TestMillionNames(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 1,000,000 names")
	}
	s, id, tok := loadMillion(t)
	tests := []struct {
		name   string
		params map[string]any
		first  string
		last   string
	}{
		{name: "start", params: map[string]any{"maxFileCount": 1000},
			first: "data/000/file-0000000.csv", last: "data/000/file-0999000.csv"},
		{name: "middle", params: map[string]any{"startFileName": "data/500/file-0500500.csv", "maxFileCount": 3},
			first: "data/500/file-0500500.csv", last: "data/500/file-0502500.csv"},
		{name: "prefix", params: map[string]any{"prefix": "data/999/", "maxFileCount": 10000},
			first: "data/999/file-0000999.csv", last: "data/999/file-0999999.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.params["bucketId"] = id
			p := listPage(t, s, http.MethodPost, tok, tt.params)
			require.NotEmpty(t, p.Files)
			require.Equal(t, tt.first, p.Files[0].FileName)
			require.Equal(t, tt.last, p.Files[len(p.Files)-1].FileName)
		})
	}
	t.Run("folders", func(t *testing.T) {
		got, pages := listAll(t, s, http.MethodGet, tok, map[string]any{
			"bucketId": id, "prefix": "data/", "delimiter": "/", "maxFileCount": 300,
		})
		require.Len(t, got, 1000, "one folder per directory")
		require.Len(t, pages, 4)
		require.Equal(t, "data/999/", got[999].FileName)
	})
}
