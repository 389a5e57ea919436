package b2

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/b2jet/b2jet/b2/b2test"
)

// decodePageFiles is the page size of BenchmarkDecodePage: B2's largest.
const decodePageFiles = MaxPageSize

// fakePage returns the body of one b2_list_file_names answer of the fake, as B2 encodes it (with
// the fields the client skips: fileRetention, legalHold, serverSideEncryption).
func fakePage(b *testing.B) []byte {
	s := b2test.NewServer()
	b.Cleanup(s.Close)
	id := s.CreateBucket("decode-bench")
	names := make([]string, decodePageFiles)
	for i := range names {
		names[i] = fmt.Sprintf("exports/2026-%02d/part-%07d.csv", i%12+1, i)
	}
	s.AddFiles("decode-bench", names...)
	c, err := New(Config{KeyID: s.MasterKey().ID, Key: Secret(s.MasterKey().Secret), RealmURL: s.URL})
	if err != nil {
		b.Fatal(err)
	}
	sess, _, err := c.Session(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	body := fmt.Sprintf(`{"bucketId":%q,"maxFileCount":%d}`, id, decodePageFiles)
	req, _ := http.NewRequest(http.MethodPost, apiURL(sess.APIURL, listAPIVersion, opListFileNames), strings.NewReader(body))
	req.Header.Set("Authorization", sess.AuthorizationToken.Reveal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	return raw
}

// BenchmarkDecodePage decodes one page of 10,000 names with the client's decoder and, as the
// baseline, with encoding/json into the same struct; it reports CPU time per file.
func BenchmarkDecodePage(b *testing.B) {
	raw := fakePage(b)
	for _, dec := range []struct {
		name   string
		decode func([]byte, *listAnswer) error
	}{
		{"encoding-json", func(raw []byte, a *listAnswer) error { return json.Unmarshal(raw, a) }},
		{"client", decodeListAnswer},
	} {
		b.Run(dec.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				var ans listAnswer
				if err := dec.decode(raw, &ans); err != nil || len(ans.Files) != decodePageFiles {
					b.Fatalf("decoded %d files: %v", len(ans.Files), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/decodePageFiles/1e3, "µs/file")
		})
	}
}
