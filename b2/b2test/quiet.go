package b2test

import (
	"strconv"
	"time"
)

// DefaultQuietGrace is how long after answering with Retry-After the fake still accepts calls
// without counting them as violations: calls the client had already sent before the answer
// reached it. See SetQuietGrace.
const DefaultQuietGrace = 200 * time.Millisecond

// Violation is a call the fake received while a Retry-After it had answered was still running.
type Violation struct {
	Endpoint Endpoint
	// At is when the call arrived; Answered is when the Retry-After answer was written, and
	// Until is when its pause ended.
	At, Answered, Until time.Time
}

// quietWindow is the latest Retry-After pause the fake has asked for.
type quietWindow struct {
	answered, until time.Time
}

// SetQuietGrace sets how long after a Retry-After answer calls are still accepted as already
// sent (DefaultQuietGrace until set). 0 counts every call inside the pause.
func (s *Server) SetQuietGrace(d time.Duration) {
	s.quietMu.Lock()
	defer s.quietMu.Unlock()
	s.quietGrace = d
	s.quietGraceSet = true
}

// Violations returns every call received while a pause the fake had asked for with
// Retry-After (in whole seconds, on any status) was in force, once the grace after that answer
// had passed. The account of the fake is one, so any call counts.
func (s *Server) Violations() []Violation {
	s.quietMu.Lock()
	defer s.quietMu.Unlock()
	return append([]Violation(nil), s.violations...)
}

// checkQuiet records a violation when a call arrives inside a pause the fake asked for.
func (s *Server) checkQuiet(ep Endpoint, at time.Time) {
	s.quietMu.Lock()
	defer s.quietMu.Unlock()
	grace := DefaultQuietGrace
	if s.quietGraceSet {
		grace = s.quietGrace
	}
	for _, q := range s.quiet {
		if at.After(q.answered.Add(grace)) && at.Before(q.until) {
			s.violations = append(s.violations, Violation{Endpoint: ep, At: at, Answered: q.answered, Until: q.until})
			return
		}
	}
}

// startQuiet records the pause a Retry-After answer asks for. Pauses that have ended are
// dropped; the ones still running are kept, since a later, shorter one does not end them.
func (s *Server) startQuiet(retryAfter string, now time.Time) {
	secs, err := strconv.Atoi(retryAfter)
	if err != nil || secs <= 0 {
		return
	}
	s.quietMu.Lock()
	defer s.quietMu.Unlock()
	kept := s.quiet[:0]
	for _, q := range s.quiet {
		if q.until.After(now) {
			kept = append(kept, q)
		}
	}
	s.quiet = append(kept, quietWindow{answered: now, until: now.Add(time.Duration(secs) * time.Second)})
}

// Tokens returns every authorization token the fake has issued, expired ones included, so a
// test can look for them where they must not be (logs, replies, dead letters).
func (s *Server) Tokens() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.tokens))
	for tok := range s.tokens {
		out = append(out, tok)
	}
	return out
}
