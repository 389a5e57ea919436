package b2test_test

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
)

func ptr(s string) *string { return &s }

func TestListFileNamesForms(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("bucket")
	var all []string
	for i := range 150 {
		all = append(all, fmt.Sprintf("n%03d", i))
	}
	s.AddFiles("bucket", all...)
	tok := authorize(t, s, s.MasterKey())

	tests := []struct {
		name     string
		method   string
		params   map[string]any
		want     []string
		wantNext *string
	}{
		{name: "GET defaults to 100", method: http.MethodGet, params: map[string]any{"bucketId": id},
			want: all[:100], wantNext: ptr("n099 ")},
		{name: "POST defaults to 100", method: http.MethodPost, params: map[string]any{"bucketId": id},
			want: all[:100], wantNext: ptr("n099 ")},
		{name: "POST with nulls (b2sdk)", method: http.MethodPost,
			params: map[string]any{"bucketId": id, "startFileName": nil, "maxFileCount": nil, "prefix": nil, "delimiter": nil},
			want:   all[:100], wantNext: ptr("n099 ")},
		{name: "POST maxFileCount 0 (blazer)", method: http.MethodPost, params: map[string]any{"bucketId": id, "maxFileCount": 0},
			want: all[:100], wantNext: ptr("n099 ")},
		{name: "GET start is inclusive", method: http.MethodGet, params: map[string]any{"bucketId": id, "startFileName": "n140", "maxFileCount": 5},
			want: all[140:145], wantNext: ptr("n144 ")},
		{name: "POST start between names", method: http.MethodPost, params: map[string]any{"bucketId": id, "startFileName": "n140 ", "maxFileCount": 100},
			want: all[141:]},
		{name: "GET prefix", method: http.MethodGet, params: map[string]any{"bucketId": id, "prefix": "n12"},
			want: all[120:130]},
		{name: "POST prefix and an earlier start", method: http.MethodPost, params: map[string]any{"bucketId": id, "prefix": "n12", "startFileName": "a"},
			want: all[120:130]},
		{name: "GET prefix and a later start", method: http.MethodGet, params: map[string]any{"bucketId": id, "prefix": "n12", "startFileName": "n125"},
			want: all[125:130]},
		{name: "prefix matching nothing", method: http.MethodGet, params: map[string]any{"bucketId": id, "prefix": "x"},
			want: []string{}},
		{name: "start after the end", method: http.MethodPost, params: map[string]any{"bucketId": id, "startFileName": "z"},
			want: []string{}},
		{name: "maxFileCount 10000", method: http.MethodPost, params: map[string]any{"bucketId": id, "maxFileCount": 10000},
			want: all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := listPage(t, s, tt.method, tok, tt.params)
			require.NotNil(t, p.Files, "files must be [], not null")
			require.Equal(t, tt.want, names(p.Files))
			require.Equal(t, tt.wantNext, p.NextFileName)
		})
	}
}

func TestFileEntryShape(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("bucket")
	s.AddFile("bucket", b2test.File{
		Name: "dir/report.csv", Size: 42, ContentType: "text/x-custom",
		SHA1: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", MD5: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		UploadTimestamp: 1700000000123, Info: map[string]string{"src_last_modified_millis": "1699999999000"},
	})
	s.AddFiles("bucket", "data.csv", "blob.bin")
	tok := authorize(t, s, s.MasterKey())
	fileID := fmt.Sprintf(`^4_z%s_f[0-9a-f]+$`, id)

	list := func() []map[string]any {
		r := call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok, map[string]any{"bucketId": id})
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		var body struct {
			Files []map[string]any `json:"files"`
		}
		require.NoError(t, json.Unmarshal(r.body, &body))
		for _, f := range body.Files {
			require.Regexp(t, fileID, f["fileId"])
		}
		return body.Files
	}
	hexSum := func(sum []byte) string { return hex.EncodeToString(sum) }
	sha, md := sha1.Sum([]byte("data.csv")), md5.Sum([]byte("data.csv"))
	shaBin, mdBin := sha1.Sum([]byte("blob.bin")), md5.Sum([]byte("blob.bin"))
	common := func(m map[string]any) map[string]any {
		m["accountId"] = s.AccountID()
		m["action"] = "upload"
		m["bucketId"] = id
		m["fileRetention"] = map[string]any{"isClientAuthorizedToRead": true, "value": nil}
		m["legalHold"] = map[string]any{"isClientAuthorizedToRead": true, "value": nil}
		m["replicationStatus"] = nil
		m["serverSideEncryption"] = map[string]any{"mode": "none"}
		return m
	}
	want := []map[string]any{
		common(map[string]any{"fileName": "blob.bin", "contentLength": float64(b2test.DefaultSize),
			"contentType": b2test.DefaultContentType, "contentSha1": hexSum(shaBin[:]), "contentMd5": hexSum(mdBin[:]),
			"fileInfo": map[string]any{}, "uploadTimestamp": float64(b2test.DefaultUploadTimestamp)}),
		common(map[string]any{"fileName": "data.csv", "contentLength": float64(b2test.DefaultSize),
			"contentType": "text/csv", "contentSha1": hexSum(sha[:]), "contentMd5": hexSum(md[:]),
			"fileInfo": map[string]any{}, "uploadTimestamp": float64(b2test.DefaultUploadTimestamp)}),
		common(map[string]any{"fileName": "dir/report.csv", "contentLength": float64(42),
			"contentType": "text/x-custom", "contentSha1": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			"contentMd5": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
			"fileInfo":   map[string]any{"src_last_modified_millis": "1699999999000"}, "uploadTimestamp": float64(1700000000123)}),
	}

	first := list()
	ids := map[string]any{}
	for _, f := range first {
		ids[f["fileName"].(string)] = f["fileId"]
		delete(f, "fileId")
	}
	require.Equal(t, want, first)
	require.Len(t, ids, 3)

	// File ids are stable between calls; replacing a file gives it a new one.
	s.AddFile("bucket", b2test.File{Name: "data.csv", Size: 7})
	second := list()
	require.Len(t, second, 3)
	require.Equal(t, ids["blob.bin"], second[0]["fileId"])
	require.NotEqual(t, ids["data.csv"], second[1]["fileId"])
	require.Equal(t, float64(7), second[1]["contentLength"])
	require.Equal(t, ids["dir/report.csv"], second[2]["fileId"])
}

func TestListFileNamesPagination(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("bucket")
	var added []string
	for i := range 2600 {
		added = append(added, fmt.Sprintf("file-%04d", i))
	}
	// Non-ASCII names, and names that are another name plus " " or a byte
	// just above it, around the lastName+" " continuation point.
	added = append(added, "é", "日本", "Z", "a", "a ", "a  ", "a!", "ä/x", "Ω", "e\u0301", "~", " lead", "file-0100 ")
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(added), func(i, j int) { added[i], added[j] = added[j], added[i] })
	s.AddFiles("bucket", added[:1000]...)
	for _, n := range added[1000:1010] {
		s.AddFile("bucket", b2test.File{Name: n})
	}
	s.AddFiles("bucket", added[1010:]...)
	s.AddFiles("bucket", added[:20]...) // duplicates replace, they are not listed twice
	s.AddFile("bucket", b2test.File{Name: "a", Size: 1})

	want := slices.Clone(added)
	slices.Sort(want) // Go string order is UTF-8 byte order
	require.Less(t, slices.Index(want, "Z"), slices.Index(want, "a"))
	require.Less(t, slices.Index(want, "a"), slices.Index(want, "é"))
	require.Less(t, slices.Index(want, "é"), slices.Index(want, "日本"))
	require.Equal(t, len(want), s.FileCount("bucket"))

	tok := authorize(t, s, s.MasterKey())
	for _, max := range []int{1, 7, 1000, 10000} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			if max == 1 && method == http.MethodPost {
				continue // 2,600 round trips once is enough
			}
			t.Run(fmt.Sprintf("%s/max%d", method, max), func(t *testing.T) {
				got, pages := listAll(t, s, method, tok, map[string]any{"bucketId": id, "maxFileCount": max})
				require.Equal(t, want, names(got), "every name exactly once, in byte order")
				for i, p := range pages[:len(pages)-1] {
					require.Len(t, p.Files, max, "page %d", i)
					require.Equal(t, p.Files[len(p.Files)-1].FileName+" ", *p.NextFileName, "page %d", i)
				}
			})
		}
	}
}

func TestFullPageContinuation(t *testing.T) {
	s := start(t)
	tenID := s.CreateBucket("ten")
	for i := range 10 {
		s.AddFiles("ten", fmt.Sprintf("f%d", i))
	}
	mixedID := s.CreateBucket("mixed")
	s.AddFiles("mixed", "a1", "a2", "b1", "d/x", "d/y")
	tok := authorize(t, s, s.MasterKey())

	type pg struct {
		n    int
		next *string
	}
	tests := []struct {
		name   string
		on     bool
		params map[string]any
		want   []pg
	}{
		{name: "on/exact half", on: true, params: map[string]any{"bucketId": tenID, "maxFileCount": 5},
			want: []pg{{5, ptr("f4 ")}, {5, ptr("f9 ")}, {0, nil}}},
		{name: "off/exact half", on: false, params: map[string]any{"bucketId": tenID, "maxFileCount": 5},
			want: []pg{{5, ptr("f4 ")}, {5, nil}}},
		{name: "on/exact whole", on: true, params: map[string]any{"bucketId": tenID, "maxFileCount": 10},
			want: []pg{{10, ptr("f9 ")}, {0, nil}}},
		{name: "off/exact whole", on: false, params: map[string]any{"bucketId": tenID, "maxFileCount": 10},
			want: []pg{{10, nil}}},
		{name: "on/not exact", on: true, params: map[string]any{"bucketId": tenID, "maxFileCount": 3},
			want: []pg{{3, ptr("f2 ")}, {3, ptr("f5 ")}, {3, ptr("f8 ")}, {1, nil}}},
		{name: "off/not exact", on: false, params: map[string]any{"bucketId": tenID, "maxFileCount": 3},
			want: []pg{{3, ptr("f2 ")}, {3, ptr("f5 ")}, {3, ptr("f8 ")}, {1, nil}}},
		{name: "on/larger than listing", on: true, params: map[string]any{"bucketId": tenID, "maxFileCount": 11},
			want: []pg{{10, nil}}},
		{name: "on/prefix exactly full", on: true, params: map[string]any{"bucketId": mixedID, "prefix": "a", "maxFileCount": 2},
			want: []pg{{2, ptr("a2 ")}, {0, nil}}},
		{name: "off/prefix exactly full", on: false, params: map[string]any{"bucketId": mixedID, "prefix": "a", "maxFileCount": 2},
			want: []pg{{2, nil}}},
		{name: "on/ends on a folder", on: true, params: map[string]any{"bucketId": mixedID, "prefix": "d", "delimiter": "/", "maxFileCount": 1},
			want: []pg{{1, ptr("d0")}, {0, nil}}},
		{name: "off/ends on a folder", on: false, params: map[string]any{"bucketId": mixedID, "prefix": "d", "delimiter": "/", "maxFileCount": 1},
			want: []pg{{1, nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetFullPageContinuation(tt.on)
			t.Cleanup(func() { s.SetFullPageContinuation(true) })
			_, pages := listAll(t, s, http.MethodPost, tok, tt.params)
			got := make([]pg, 0, len(pages))
			for _, p := range pages {
				got = append(got, pg{len(p.Files), p.NextFileName})
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// photos is the example of b2-api.md 2.4.
var photos = []string{
	"photos/alice.jpg", "photos/alfred.jpg", "photos/cats/fluffy.jpg",
	"photos/cats/mittens.jpg", "photos/dogs/spot.jpg", "photos/lilly.jpg",
}

func TestDelimiter(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("photos")
	s.AddFiles("photos", photos...)
	tok := authorize(t, s, s.MasterKey())

	up := func(n string) string { return "upload " + n }
	dir := func(n string) string { return "folder " + n }
	tests := []struct {
		name      string
		prefix    string
		delimiter string
		want      []string
	}{
		{name: "no prefix, no delimiter", want: []string{
			up("photos/alfred.jpg"), up("photos/alice.jpg"), up("photos/cats/fluffy.jpg"),
			up("photos/cats/mittens.jpg"), up("photos/dogs/spot.jpg"), up("photos/lilly.jpg")}},
		{name: "prefix is a plain string prefix", prefix: "photos/c", want: []string{
			up("photos/cats/fluffy.jpg"), up("photos/cats/mittens.jpg")}},
		{name: "prefix and delimiter", prefix: "photos/", delimiter: "/", want: []string{
			up("photos/alfred.jpg"), up("photos/alice.jpg"), dir("photos/cats/"), dir("photos/dogs/"), up("photos/lilly.jpg")}},
		{name: "delimiter at the top", delimiter: "/", want: []string{dir("photos/")}},
		{name: "inside a folder", prefix: "photos/cats/", delimiter: "/", want: []string{
			up("photos/cats/fluffy.jpg"), up("photos/cats/mittens.jpg")}},
		{name: "prefix ending mid-name", prefix: "photos/d", delimiter: "/", want: []string{dir("photos/dogs/")}},
		{name: "longer delimiter", prefix: "photos/", delimiter: "s/", want: []string{
			up("photos/alfred.jpg"), up("photos/alice.jpg"), dir("photos/cats/"), dir("photos/dogs/"), up("photos/lilly.jpg")}},
	}
	for _, tt := range tests {
		for _, max := range []int{1, 2, 3, 1000} {
			t.Run(fmt.Sprintf("%s/max%d", tt.name, max), func(t *testing.T) {
				got, pages := listAll(t, s, http.MethodGet, tok, map[string]any{
					"bucketId": id, "prefix": tt.prefix, "delimiter": tt.delimiter, "maxFileCount": max,
				})
				var actions []string
				for _, e := range got {
					actions = append(actions, e.Action+" "+e.FileName)
				}
				require.Equal(t, tt.want, actions)
				for _, p := range pages {
					require.LessOrEqual(t, len(p.Files), max, "a folder counts as one item")
				}
			})
		}
	}
}

func TestDelimiterPages(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("photos")
	s.AddFiles("photos", photos...)
	for i := range 500 { // many names under one folder still make one entry
		s.AddFiles("photos", fmt.Sprintf("photos/cats/kitten%03d.jpg", i))
	}
	tok := authorize(t, s, s.MasterKey())

	type pg struct {
		entries []string
		next    *string
	}
	tests := []struct {
		max  int
		want []pg
	}{
		{max: 3, want: []pg{
			{[]string{"photos/alfred.jpg", "photos/alice.jpg", "photos/cats/"}, ptr("photos/cats0")},
			{[]string{"photos/dogs/", "photos/lilly.jpg"}, nil},
		}},
		{max: 2, want: []pg{
			{[]string{"photos/alfred.jpg", "photos/alice.jpg"}, ptr("photos/alice.jpg ")},
			{[]string{"photos/cats/", "photos/dogs/"}, ptr("photos/dogs0")},
			{[]string{"photos/lilly.jpg"}, nil},
		}},
		{max: 4, want: []pg{
			{[]string{"photos/alfred.jpg", "photos/alice.jpg", "photos/cats/", "photos/dogs/"}, ptr("photos/dogs0")},
			{[]string{"photos/lilly.jpg"}, nil},
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max%d", tt.max), func(t *testing.T) {
			_, pages := listAll(t, s, http.MethodPost, tok, map[string]any{
				"bucketId": id, "prefix": "photos/", "delimiter": "/", "maxFileCount": tt.max,
			})
			got := make([]pg, 0, len(pages))
			for _, p := range pages {
				got = append(got, pg{names(p.Files), p.NextFileName})
			}
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("folder entry shape", func(t *testing.T) {
		r := call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok,
			map[string]any{"bucketId": id, "prefix": "photos/cats", "delimiter": "/"})
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		require.Equal(t, map[string]any{
			"files": []any{map[string]any{
				"accountId": s.AccountID(), "action": "folder", "bucketId": id, "contentLength": float64(0),
				"contentMd5": nil, "contentSha1": nil, "contentType": nil, "fileId": nil, "fileInfo": map[string]any{},
				"fileName": "photos/cats/", "replicationStatus": nil, "uploadTimestamp": float64(0),
			}},
			"nextFileName": nil,
		}, r.object(t))
	})
}

func TestListFileNamesErrors(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("bucket")
	s.AddFiles("bucket", "a", "b")
	tok := authorize(t, s, s.MasterKey())
	tests := []struct {
		name       string
		method     string
		params     map[string]any
		raw        string // body sent as is, with POST
		wantStatus int
		wantCode   string
	}{
		{name: "GET without bucketId", method: http.MethodGet, params: map[string]any{"maxFileCount": 5}, wantStatus: 400, wantCode: "bad_request"},
		{name: "POST without bucketId", method: http.MethodPost, params: map[string]any{}, wantStatus: 400, wantCode: "bad_request"},
		{name: "POST null bucketId", method: http.MethodPost, params: map[string]any{"bucketId": nil}, wantStatus: 400, wantCode: "bad_request"},
		{name: "POST empty body", method: http.MethodPost, wantStatus: 400, wantCode: "bad_request"},
		{name: "POST broken JSON", method: http.MethodPost, raw: `{"bucketId":`, wantStatus: 400, wantCode: "bad_json"},
		{name: "GET maxFileCount -1", method: http.MethodGet, params: map[string]any{"bucketId": id, "maxFileCount": -1}, wantStatus: 400, wantCode: "out_of_range"},
		{name: "POST maxFileCount 10001", method: http.MethodPost, params: map[string]any{"bucketId": id, "maxFileCount": 10001}, wantStatus: 400, wantCode: "out_of_range"},
		{name: "GET maxFileCount 10001", method: http.MethodGet, params: map[string]any{"bucketId": id, "maxFileCount": 10001}, wantStatus: 400, wantCode: "out_of_range"},
		{name: "GET maxFileCount not a number", method: http.MethodGet, params: map[string]any{"bucketId": id, "maxFileCount": "ten"}, wantStatus: 400, wantCode: "bad_request"},
		{name: "unknown bucketId", method: http.MethodPost, params: map[string]any{"bucketId": "000000000000000000000000"}, wantStatus: 400, wantCode: "invalid_bucket_id"},
		{name: "a bucket name is not an id", method: http.MethodGet, params: map[string]any{"bucketId": "bucket"}, wantStatus: 400, wantCode: "invalid_bucket_id"},
		{name: "PUT", method: http.MethodPut, params: map[string]any{"bucketId": id}, wantStatus: 405, wantCode: "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.raw != "" {
				rawCall(t, s, tt.method, "/b2api/v2/b2_list_file_names", tok, tt.raw).requireError(t, tt.wantStatus, tt.wantCode)
				return
			}
			call(t, s, tt.method, "v2", b2test.EndpointListFileNames, tok, tt.params).requireError(t, tt.wantStatus, tt.wantCode)
		})
	}
}

func TestListDeletedBucket(t *testing.T) {
	s := start(t)
	old := s.CreateBucket("bucket")
	s.AddFiles("bucket", "a", "b")
	tok := authorize(t, s, s.MasterKey())
	require.Len(t, listPage(t, s, http.MethodGet, tok, map[string]any{"bucketId": old}).Files, 2)

	s.DeleteBucket("bucket")
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		call(t, s, method, "v2", b2test.EndpointListFileNames, tok, map[string]any{"bucketId": old}).
			requireError(t, 400, "invalid_bucket_id")
	}

	fresh := s.CreateBucket("bucket")
	require.NotEqual(t, old, fresh)
	call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok, map[string]any{"bucketId": old}).
		requireError(t, 400, "invalid_bucket_id")
	p := listPage(t, s, http.MethodPost, tok, map[string]any{"bucketId": fresh})
	assert.Empty(t, p.Files, "the new bucket starts empty")
	assert.Nil(t, p.NextFileName)
}

func TestListRestrictedKeys(t *testing.T) {
	s := start(t)
	a, b, c := s.CreateBucket("bucket-a"), s.CreateBucket("bucket-b"), s.CreateBucket("bucket-c")
	gone := s.CreateBucket("bucket-gone")
	for _, name := range []string{"bucket-a", "bucket-b", "bucket-c"} {
		s.AddFiles(name, "logs/2024/x", "logs/y", "other/z")
	}
	keys := []b2test.Key{
		{ID: "k-nolist", Secret: "s", Capabilities: []string{"listBuckets", "readFiles"}},
		{ID: "k-a", Secret: "s", Capabilities: []string{"listFiles"}, Buckets: []string{"bucket-a"}},
		{ID: "k-logs", Secret: "s", Capabilities: []string{"listFiles"}, NamePrefix: "logs/"},
		{ID: "k-ab", Secret: "s", Capabilities: []string{"listFiles"}, Buckets: []string{"bucket-a", "bucket-b"}, MultiBucket: true},
		{ID: "k-gone", Secret: "s", Capabilities: []string{"listFiles"}, Buckets: []string{"bucket-gone"}},
	}
	tokens := map[string]string{}
	for _, k := range keys {
		s.AddKey(k)
		tokens[k.ID] = authorize(t, s, k)
	}
	s.DeleteBucket("bucket-gone")

	tests := []struct {
		name     string
		key      string
		bucketID string
		prefix   string
		want     []string // nil with wantCode
		wantCode string
	}{
		{name: "no listFiles capability", key: "k-nolist", bucketID: a, wantCode: "unauthorized"},
		{name: "own bucket", key: "k-a", bucketID: a, want: []string{"logs/2024/x", "logs/y", "other/z"}},
		{name: "other bucket", key: "k-a", bucketID: b, wantCode: "unauthorized"},
		{name: "prefix key without prefix", key: "k-logs", bucketID: a, wantCode: "unauthorized"},
		{name: "prefix key, other prefix", key: "k-logs", bucketID: a, prefix: "other/", wantCode: "unauthorized"},
		{name: "prefix key, shorter prefix", key: "k-logs", bucketID: a, prefix: "log", wantCode: "unauthorized"},
		{name: "prefix key, its prefix", key: "k-logs", bucketID: b, prefix: "logs/", want: []string{"logs/2024/x", "logs/y"}},
		{name: "prefix key, longer prefix", key: "k-logs", bucketID: c, prefix: "logs/2024/", want: []string{"logs/2024/x"}},
		{name: "multi-bucket key, first", key: "k-ab", bucketID: a, want: []string{"logs/2024/x", "logs/y", "other/z"}},
		{name: "multi-bucket key, second", key: "k-ab", bucketID: b, prefix: "o", want: []string{"other/z"}},
		{name: "multi-bucket key, third", key: "k-ab", bucketID: c, wantCode: "unauthorized"},
		{name: "key of a deleted bucket", key: "k-gone", bucketID: gone, wantCode: "invalid_bucket_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := map[string]any{"bucketId": tt.bucketID, "prefix": tt.prefix}
			if tt.wantCode != "" {
				status := 401
				if tt.wantCode == "invalid_bucket_id" {
					status = 400
				}
				call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tokens[tt.key], params).requireError(t, status, tt.wantCode)
				return
			}
			got, _ := listAll(t, s, http.MethodPost, tokens[tt.key], params)
			require.Equal(t, tt.want, names(got))
		})
	}
}
