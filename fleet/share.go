package fleet

import (
	"encoding/json"
	"math"
	"time"
)

// Share implements b2.RateShare: the account's requests-per-second budget is the fleet's, and
// this worker's part is 1 ÷ the live workers serving the account (itself included). Without
// the bucket it keeps the part it last had.
func (a *Account) Share() float64 { return math.Float64frombits(a.share.Load()) }

// heartbeatValue is a worker's heartbeat: the accounts it serves.
type heartbeatValue struct {
	Accounts []string `json:"accounts"`
}

func heartbeat(accounts []string) []byte {
	raw, _ := json.Marshal(heartbeatValue{Accounts: accounts})
	return raw
}

// applyHeartbeat takes in a worker's heartbeat, or its removal.
func (s *State) applyHeartbeat(key string, raw []byte, deleted bool) {
	id, ok := nameOf(key[len(livePrefix):])
	if !ok || id == s.cfg.WorkerID {
		return
	}
	s.mu.Lock()
	if deleted {
		delete(s.peers, id)
	} else {
		var hb heartbeatValue
		if json.Unmarshal(raw, &hb) != nil {
			s.mu.Unlock()
			return
		}
		p := peer{accounts: map[string]bool{}, seen: s.cfg.Now()}
		for _, a := range hb.Accounts {
			p.accounts[a] = true
		}
		_, known := s.peers[id]
		s.peers[id] = p
		if known && s.shared {
			s.mu.Unlock()
			return // a heartbeat of a worker already counted changes no share
		}
	}
	s.mu.Unlock()
	s.recomputeShares()
}

// prune forgets workers whose heartbeat is older than LiveFor (stopped without removing it:
// killed, or cut off).
func (s *State) prune() {
	now := s.cfg.Now()
	s.mu.Lock()
	changed := false
	for id, p := range s.peers {
		if now.Sub(p.seen) > s.cfg.LiveFor {
			delete(s.peers, id)
			changed = true
		}
	}
	s.mu.Unlock()
	if changed {
		s.recomputeShares()
	}
}

// livePeersLocked counts the other workers seen within LiveFor.
func (s *State) livePeersLocked(now time.Time) int {
	n := 0
	for _, p := range s.peers {
		if now.Sub(p.seen) <= s.cfg.LiveFor {
			n++
		}
	}
	return n
}

// recomputeShares sets every account's share from the live workers serving it.
func (s *State) recomputeShares() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range s.names {
		n := 1
		for _, p := range s.peers {
			if p.accounts[name] {
				n++
			}
		}
		s.accounts[name].share.Store(math.Float64bits(1 / float64(n)))
	}
}
