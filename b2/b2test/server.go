package b2test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint names a B2 native API call, as it appears in the URL path
// /b2api/<version>/<Endpoint>.
type Endpoint string

// The endpoints the fake serves. Any other API name answers 404 not_found.
const (
	EndpointAuthorize     Endpoint = "b2_authorize_account"
	EndpointListBuckets   Endpoint = "b2_list_buckets"
	EndpointListFileNames Endpoint = "b2_list_file_names"
)

// accountSeq makes the account ids of fakes in one process distinct.
var accountSeq atomic.Uint64

// Server is a running fake of the B2 native API for one account. URL is
// both the realm for b2_authorize_account and the apiUrl and downloadUrl the
// fake hands out. All methods are safe for concurrent use, also while
// requests are being served.
type Server struct {
	// URL is the base URL of the fake, of the form http://127.0.0.1:port
	// with no trailing slash.
	URL string

	ts        *httptest.Server
	handler   http.Handler
	accountID string
	done      chan struct{} // closed by Close; ends injected latencies
	closeOnce sync.Once

	// mu guards keys, tokens and the bucket maps. The file index of a
	// bucket has its own lock (bucket.mu).
	mu          sync.RWMutex
	master      Key
	keys        map[string]*keyRec // by key id
	tokens      map[string]*tokenRec
	tokenSeq    uint64
	expiredUpTo uint64             // tokens with seq <= expiredUpTo are expired
	buckets     map[string]*bucket // by name
	byID        map[string]*bucket // live buckets by id
	reserved    map[string]string  // bucket name -> id promised to a key before the bucket existed
	bucketSeq   uint64

	fileSeq atomic.Uint64 // source of file ids

	faultMu    sync.Mutex
	faults     []*faultRec
	latency    map[Endpoint]time.Duration
	keyLatency map[string]time.Duration // by key id, see SetKeyLatency

	callMu sync.Mutex
	calls  map[Endpoint]int
	// prefixCalls counts the list calls under each prefix given to CountPrefix.
	prefixCalls map[string]int
	// expireEvery, when positive, expires every token after each expireEvery-th call of
	// expireEp (see ExpireTokensEvery); expireCount counts those calls.
	expireEp    Endpoint
	expireEvery int
	expireCount int

	fullPageContinuation atomic.Bool

	// quietMu guards the Retry-After pauses the fake asked for and the calls that broke them.
	quietMu       sync.Mutex
	quiet         []quietWindow
	quietGrace    time.Duration
	quietGraceSet bool
	violations    []Violation
}

// NewServer starts a fake on a loopback port, with one account, a master
// key (see MasterKey) and no buckets. Call Close when done.
func NewServer() *Server {
	s := newFake()
	s.ts = httptest.NewServer(s.handler)
	s.URL = s.ts.URL
	return s
}

// newFake builds the fake without a listener; NewServer starts it.
func newFake() *Server {
	n := accountSeq.Add(1)
	s := &Server{
		accountID:   fmt.Sprintf("acct%012x", 0x0123456789a0+n),
		done:        make(chan struct{}),
		keys:        make(map[string]*keyRec),
		tokens:      make(map[string]*tokenRec),
		buckets:     make(map[string]*bucket),
		byID:        make(map[string]*bucket),
		reserved:    make(map[string]string),
		latency:     make(map[Endpoint]time.Duration),
		keyLatency:  make(map[string]time.Duration),
		calls:       make(map[Endpoint]int),
		prefixCalls: make(map[string]int),
	}
	s.fullPageContinuation.Store(true)
	s.handler = http.HandlerFunc(s.serveHTTP)
	s.master = Key{ID: s.accountID, Secret: "K" + s.accountID + "master"}
	s.AddKey(s.master)
	return s
}

// Close stops the listener, ends injected latencies early and waits for
// requests in flight to finish. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		if s.ts != nil {
			s.ts.Close()
		}
	})
}

// Handler returns the fake's HTTP handler, to drive it without a network
// round trip (e.g. with httptest.NewRecorder in benchmarks). Responses still
// name s.URL as apiUrl. A Fault with Drop needs a ResponseWriter that
// implements http.Hijacker; without one the handler panics with
// http.ErrAbortHandler, as net/http does to abort a response.
func (s *Server) Handler() http.Handler { return s.handler }

// AccountID returns the id of the fake's only account. It is also the id of
// the master key.
func (s *Server) AccountID() string { return s.accountID }

// SetFullPageContinuation sets whether a page that fills maxFileCount
// exactly with the last names of the listing still returns a non-null
// nextFileName (then the next call returns no files and a null
// nextFileName), as b2sdk's simulator does. The default is true.
func (s *Server) SetFullPageContinuation(on bool) { s.fullPageContinuation.Store(on) }

// Calls returns how many requests for ep the fake has received since it
// started or since ResetCalls, faulted and refused ones included. Requests
// for API names the fake does not serve (404) are not counted.
func (s *Server) Calls(ep Endpoint) int {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	return s.calls[ep]
}

// ResetCalls sets every call counter back to zero (those of CountPrefix too).
func (s *Server) ResetCalls() {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	clear(s.calls)
	for p := range s.prefixCalls {
		s.prefixCalls[p] = 0
	}
}

// CountPrefix has the fake count the b2_list_file_names calls whose prefix parameter starts with
// prefix, faulted and refused ones included (see PrefixCalls): a test that mixes listings tells
// the B2 calls of one kind apart so.
func (s *Server) CountPrefix(prefix string) {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if _, ok := s.prefixCalls[prefix]; !ok {
		s.prefixCalls[prefix] = 0
	}
}

// PrefixCalls returns how many b2_list_file_names calls under prefix the fake has received since
// CountPrefix(prefix) or ResetCalls; 0 for a prefix it does not count.
func (s *Server) PrefixCalls(prefix string) int {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	return s.prefixCalls[prefix]
}

// countPrefixes counts a list call in every counted prefix its prefix parameter starts with.
func (s *Server) countPrefixes(prefix string) {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	for p, n := range s.prefixCalls {
		if strings.HasPrefix(prefix, p) {
			s.prefixCalls[p] = n + 1
		}
	}
}

func (s *Server) count(ep Endpoint) {
	s.callMu.Lock()
	s.calls[ep]++
	expire := false
	if s.expireEvery > 0 && ep == s.expireEp {
		s.expireCount++
		expire = s.expireCount%s.expireEvery == 0
	}
	s.callMu.Unlock()
	if expire {
		s.ExpireTokens()
	}
}

// serveHTTP routes /b2api/{v1,v2,v3,v4}/<apiName>.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/b2api/")
	if !ok {
		writeError(w, newError(http.StatusNotFound, CodeNotFound, "not found: "+r.URL.Path))
		return
	}
	ver, name, _ := strings.Cut(rest, "/")
	version := 0
	switch ver {
	case "v1", "v2", "v3", "v4":
		version = int(ver[1] - '0')
	}
	ep := Endpoint(name)
	switch {
	case version == 0:
		writeError(w, newError(http.StatusNotFound, CodeNotFound, "unknown API version: "+ver))
		return
	case ep != EndpointAuthorize && ep != EndpointListBuckets && ep != EndpointListFileNames:
		writeError(w, newError(http.StatusNotFound, CodeNotFound, "unknown API: "+name))
		return
	}
	s.serveEndpoint(w, r, version, ep)
}

// serveEndpoint counts the call, applies latency and faults, then runs the
// endpoint's handler.
func (s *Server) serveEndpoint(w http.ResponseWriter, r *http.Request, version int, ep Endpoint) {
	s.count(ep)
	s.checkQuiet(ep, time.Now())
	// list_file_names parameters are read before the faults, which may
	// match on them; a parameter error is answered only if no fault hits.
	var lr *listRequest
	var lerr *apiError
	if ep == EndpointListFileNames {
		lr, lerr = parseListRequest(r)
		s.countPrefixes(lr.prefix)
	}
	if !s.sleep(w, r, s.latencyFor(ep)+s.keyLatencyFor(r, ep)) {
		return
	}
	if f, ok := s.takeFault(ep, lr); ok {
		if done := s.serveFault(w, r, f); done {
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeError(w, newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use GET or POST"))
		return
	}
	var err *apiError
	switch ep {
	case EndpointAuthorize:
		err = s.authorize(w, r, version)
	case EndpointListBuckets:
		err = s.listBuckets(w, r)
	case EndpointListFileNames:
		if lerr == nil {
			err = s.listFileNames(w, r, lr)
		} else if _, terr := s.checkToken(r); terr != nil {
			err = terr // a bad token is reported before bad parameters
		} else {
			err = lerr
		}
	}
	if err != nil {
		writeError(w, err)
	}
}

// sleep waits d unless the client goes away or the fake closes first. It
// reports whether the handler should go on answering; if the fake closed,
// it has answered 503 service_unavailable.
func (s *Server) sleep(w http.ResponseWriter, r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		writeError(w, newError(http.StatusServiceUnavailable, CodeServiceUnavailable, "b2test: server closed"))
		return false
	}
}
