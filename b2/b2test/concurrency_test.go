package b2test_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
)

// TestConcurrentUse drives every kind of request and every control method
// from many goroutines at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	const (
		workers    = 16
		iterations = 25
		shared     = 3000
	)
	s := start(t)
	sharedID := s.CreateBucket("shared")
	var sharedNames []string
	for i := range shared {
		sharedNames = append(sharedNames, fmt.Sprintf("obj/%05d", (i*7919)%shared)) // unsorted
	}
	s.AddFiles("shared", sharedNames...)
	growID := s.CreateBucket("grow")
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var requests atomic.Int64

	// do sends one request, re-authorizing once on an expired token, and
	// accepts only the injected 503s besides success.
	do := func(tok *string, method string, ep b2test.Endpoint, params map[string]any) (reply, bool) {
		for range 2 {
			requests.Add(1)
			r, err := send(context.Background(), hc, s, method, "v2", ep, *tok, params)
			if !assert.NoError(t, err) {
				return r, false
			}
			switch r.status {
			case http.StatusOK:
				return r, true
			case http.StatusServiceUnavailable:
				return r, false
			case http.StatusUnauthorized:
				m := s.MasterKey()
				requests.Add(1)
				a, err := send(context.Background(), hc, s, http.MethodGet, "v2", b2test.EndpointAuthorize, basic(m.ID, m.Secret), nil)
				if !assert.NoError(t, err) || !assert.Equal(t, http.StatusOK, a.status) {
					return r, false
				}
				var body struct {
					Token string `json:"authorizationToken"`
				}
				assert.NoError(t, json.Unmarshal(a.body, &body))
				*tok = body.Token
				continue
			default:
				assert.Failf(t, "unexpected answer", "%d %s", r.status, r.body)
				return r, false
			}
		}
		return reply{}, false
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			tok := ""
			own := fmt.Sprintf("worker-%02d", w)
			for i := range iterations {
				s.AddFile("grow", b2test.File{Name: fmt.Sprintf("%s/%03d", own, i), Size: int64(i)})
				switch i % 5 {
				case 0:
					s.Inject(b2test.EndpointListBuckets, b2test.Fault{Status: 503, Times: 1})
				case 1:
					if w == 0 {
						s.ExpireTokens()
					}
				case 2:
					s.CreateBucket(own)
					s.AddFiles(own, "x", "y")
				case 3:
					s.DeleteBucket(own)
				}
				r, ok := do(&tok, http.MethodPost, b2test.EndpointListFileNames, map[string]any{
					"bucketId": sharedID, "startFileName": fmt.Sprintf("obj/%05d", i*100), "maxFileCount": 50,
				})
				if ok {
					var p page
					assert.NoError(t, json.Unmarshal(r.body, &p))
					assert.Len(t, p.Files, 50)
				}
				do(&tok, http.MethodGet, b2test.EndpointListFileNames, map[string]any{
					"bucketId": growID, "prefix": own + "/", "delimiter": "/",
				})
				do(&tok, http.MethodGet, b2test.EndpointListBuckets, map[string]any{"accountId": s.AccountID()})
				_ = s.Calls(b2test.EndpointListFileNames)
				_ = s.FileCount("grow")
			}
		})
	}
	wg.Wait()

	total := s.Calls(b2test.EndpointAuthorize) + s.Calls(b2test.EndpointListBuckets) + s.Calls(b2test.EndpointListFileNames)
	require.Equal(t, int(requests.Load()), total, "every request is counted once")

	// Every file added concurrently is listed exactly once.
	tok := authorize(t, s, s.MasterKey())
	got, _ := listAll(t, s, http.MethodPost, tok, map[string]any{"bucketId": growID, "maxFileCount": 100})
	var want []string
	for w := range workers {
		for i := range iterations {
			want = append(want, fmt.Sprintf("worker-%02d/%03d", w, i))
		}
	}
	slices.Sort(want)
	require.Equal(t, want, names(got))
	all, _ := listAll(t, s, http.MethodGet, tok, map[string]any{"bucketId": sharedID, "maxFileCount": 10000})
	require.Len(t, all, shared)
}
