package b2test

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// Fault is a failure the fake answers with instead of serving a call, set
// with Inject. The zero Fault answers 500 internal_error.
type Fault struct {
	// Status is the HTTP status to answer; 0 means 500 (ignored with Drop).
	Status int
	// Code is the B2 error code of the JSON body; "" picks the usual code
	// for Status (429 too_many_requests, 503 service_unavailable, ...).
	Code string
	// Message is the body's message; "" means a generic one.
	Message string
	// RetryAfter is the raw Retry-After header value; "" sends no header.
	RetryAfter string
	// RawBody, if non-nil, is sent as the body exactly, instead of the
	// JSON error (e.g. a proxy's HTML page). No Content-Type is set, so
	// net/http sniffs one.
	RawBody []byte
	// Drop closes the connection without any response. The client sees a
	// transport error. Note that net/http's Transport retries a GET once
	// on its own when a reused keep-alive connection closes this way.
	Drop bool
	// Latency delays the answer, or the drop; the delay ends early if the
	// client goes away (nothing is answered) or the fake closes (503). A
	// Fault with only Latency (and Times, Prefix, BucketID) delays the
	// call and then serves it normally.
	Latency time.Duration
	// Times is how many matching calls the fault applies to; 0 means every
	// matching call until ClearFaults.
	Times int
	// Prefix, for b2_list_file_names only, matches only calls whose prefix
	// parameter starts with it; "" matches all.
	Prefix string
	// BucketID, for b2_list_file_names only, matches only calls for that
	// bucket; "" matches all.
	BucketID string
}

// faultRec is an injected fault and its remaining uses.
type faultRec struct {
	ep   Endpoint
	f    Fault
	left int // meaningful when f.Times > 0
}

// Inject adds a fault for ep. Every call is checked against the faults in
// injection order, after it is counted and before it is served; the first
// that matches applies and uses up one of its Times.
func (s *Server) Inject(ep Endpoint, f Fault) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = append(s.faults, &faultRec{ep: ep, f: f, left: f.Times})
}

// ClearFaults removes every injected fault. Latencies set with SetLatency
// stay.
func (s *Server) ClearFaults() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = nil
}

// SetLatency delays every call of ep by d before faults and handling; 0
// removes the delay. The delay ends early if the client goes away. Every
// endpoint starts with no latency.
func (s *Server) SetLatency(ep Endpoint, d time.Duration) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if d <= 0 {
		delete(s.latency, ep)
		return
	}
	s.latency[ep] = d
}

func (s *Server) latencyFor(ep Endpoint) time.Duration {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.latency[ep]
}

// SetKeyLatency delays every call made with the key keyID by d, on top of
// SetLatency's delay: b2_authorize_account with that key, and every call
// with a token issued for it. Two keys then stand for two tenants, one of
// them slow. 0 removes the delay.
func (s *Server) SetKeyLatency(keyID string, d time.Duration) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if d <= 0 {
		delete(s.keyLatency, keyID)
		return
	}
	s.keyLatency[keyID] = d
}

// keyLatencyFor is the SetKeyLatency delay of the key behind r; a call with
// no known key has none.
func (s *Server) keyLatencyFor(r *http.Request, ep Endpoint) time.Duration {
	s.faultMu.Lock()
	none := len(s.keyLatency) == 0
	s.faultMu.Unlock()
	if none {
		return 0
	}
	var id string
	if ep == EndpointAuthorize {
		id, _, _ = r.BasicAuth()
	} else {
		s.mu.RLock()
		if rec := s.tokens[r.Header.Get("Authorization")]; rec != nil {
			id = rec.key.key.ID
		}
		s.mu.RUnlock()
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.keyLatency[id]
}

// takeFault returns the first fault matching the call and uses it up once.
// lr holds the list_file_names parameters (nil for other endpoints).
func (s *Server) takeFault(ep Endpoint, lr *listRequest) (Fault, bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for i, fr := range s.faults {
		if fr.ep != ep {
			continue
		}
		if lr != nil && (!strings.HasPrefix(lr.prefix, fr.f.Prefix) ||
			(fr.f.BucketID != "" && fr.f.BucketID != lr.bucketID)) {
			continue
		}
		if fr.f.Times > 0 {
			if fr.left--; fr.left == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return fr.f, true
	}
	return Fault{}, false
}

// serveFault applies f. It reports whether the request is finished; false
// means f was only a delay and the call is to be served normally.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if !s.sleep(w, r, f.Latency) {
		return true
	}
	if f.Drop {
		dropConnection(w)
		return true
	}
	if f.Latency > 0 && f.Status == 0 && f.Code == "" && f.Message == "" && f.RetryAfter == "" && f.RawBody == nil {
		return false
	}
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
		s.startQuiet(f.RetryAfter, time.Now())
	}
	if f.RawBody != nil {
		w.WriteHeader(status)
		_, _ = w.Write(f.RawBody) // a failed write means the client went away
		return true
	}
	code, msg := f.Code, f.Message
	if code == "" {
		code = defaultCode(status)
	}
	if msg == "" {
		msg = "b2test: injected fault"
	}
	writeError(w, newError(status, code, msg))
	return true
}

// dropConnection closes the client's connection without answering. Without
// a hijackable connection it aborts the handler the way net/http expects.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close() // nothing to do if closing fails
}
