package b2_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
)

const benchNames = 1_000_000

var (
	benchOnce  sync.Once
	benchFake  *b2test.Server
	benchID    string
	benchToken string
)

// benchServer loads one fake with a million names, shared by the benchmarks of this run.
func benchServer(b *testing.B) (*b2test.Server, string) {
	b.Helper()
	benchOnce.Do(func() {
		benchFake = b2test.NewServer()
		benchID = benchFake.CreateBucket("bench-bucket")
		names := make([]string, benchNames)
		for i := range names {
			names[i] = fmt.Sprintf("exports/2026-%02d/part-%07d.csv", i%12+1, i)
		}
		benchFake.AddFiles("bench-bucket", names...)
		// Warm the fake's index outside the timed region.
		c, _ := b2.New(b2.Config{KeyID: benchFake.MasterKey().ID, Key: b2.Secret(benchFake.MasterKey().Secret), RealmURL: benchFake.URL})
		s, _, err := c.Session(context.Background())
		if err != nil {
			panic(err)
		}
		benchToken = s.AuthorizationToken.Reveal()
		if _, err := c.ListFileNames(context.Background(), b2.ListRequest{BucketID: benchID, MaxFileCount: 1}); err != nil {
			panic(err)
		}
	})
	return benchFake, benchID
}

// heapWatch samples the heap above a baseline taken after a GC: peak is the highest HeapAlloc
// seen (garbage included, so it follows GC pacing over the fake's own million-name index), live
// the highest heap left after a forced GC every 50 pages (what the listing really retains).
type heapWatch struct {
	base, peak, live uint64
	samples          int
}

func newHeapWatch() *heapWatch {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return &heapWatch{base: m.HeapAlloc}
}

func (h *heapWatch) sample() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	h.peak = max(h.peak, m.HeapAlloc)
	if h.samples++; h.samples%50 == 0 {
		runtime.GC()
		runtime.ReadMemStats(&m)
		h.live = max(h.live, m.HeapAlloc)
	}
}

func (h *heapWatch) report(b *testing.B, files int, elapsed time.Duration) {
	b.ReportMetric(float64(files)/elapsed.Seconds(), "files/s")
	above := func(v uint64) float64 {
		if v <= h.base {
			return 0
		}
		return float64(v-h.base) / (1 << 20)
	}
	b.ReportMetric(above(h.peak), "peak-heap-MiB")
	b.ReportMetric(above(h.live), "live-heap-MiB")
}

// BenchmarkListMillion lists 1,000,000 names from the fake with the client's Pages iterator.
// Peak heap growth (fake server and client in one process) is sampled after every page.
func BenchmarkListMillion(b *testing.B) {
	s, id := benchServer(b)
	for _, pageSize := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("client/page=%d", pageSize), func(b *testing.B) {
			c, err := b2.New(b2.Config{KeyID: s.MasterKey().ID, Key: b2.Secret(s.MasterKey().Secret), RealmURL: s.URL})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				hw := newHeapWatch()
				start := time.Now()
				files := 0
				for page, err := range c.Pages(context.Background(), b2.ListRequest{BucketID: id, MaxFileCount: pageSize}) {
					if err != nil {
						b.Fatal(err)
					}
					files += len(page.Files)
					hw.sample()
				}
				if files != benchNames {
					b.Fatalf("listed %d names", files)
				}
				hw.report(b, files, time.Since(start))
			}
		})
		b.Run(fmt.Sprintf("raw-http/page=%d", pageSize), func(b *testing.B) {
			for b.Loop() {
				hw := newHeapWatch()
				start := time.Now()
				files := rawList(b, s.URL, id, pageSize, hw)
				if files != benchNames {
					b.Fatalf("listed %d names", files)
				}
				hw.report(b, files, time.Since(start))
			}
		})
	}
}

// rawList is the baseline: the least a Go program can do to list the bucket, a plain POST loop
// decoding into generic maps, with no session cache, errors, limits or checks.
func rawList(b *testing.B, base, id string, pageSize int, hw *heapWatch) int {
	files := 0
	var start any
	for {
		body, _ := json.Marshal(map[string]any{"bucketId": id, "maxFileCount": pageSize, "startFileName": start})
		req, _ := http.NewRequest(http.MethodPost, base+"/b2api/v2/b2_list_file_names", bytes.NewReader(body))
		req.Header.Set("Authorization", benchToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var page struct {
			Files        []map[string]any `json:"files"`
			NextFileName *string          `json:"nextFileName"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		_ = resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		files += len(page.Files)
		hw.sample()
		if page.NextFileName == nil {
			return files
		}
		start = *page.NextFileName
	}
}
