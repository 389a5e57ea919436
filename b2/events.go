package b2

import "time"

// EventKind names something observable the Client did, for metrics.
type EventKind string

// Event kinds reported to Config.OnEvent.
const (
	// EventCall: one HTTP call to B2 finished. Op, Status (0 when no answer came), Code,
	// Duration and Err are set.
	EventCall EventKind = "call"
	// EventSessionHit: a caller was served the cached session without a B2 call.
	EventSessionHit EventKind = "session_hit"
	// EventSessionMiss: a caller needed a new session (none yet, due for refresh, or forced).
	EventSessionMiss EventKind = "session_miss"
	// EventRefresh: b2_authorize_account produced a new session (Err nil) or failed (Err set).
	EventRefresh EventKind = "refresh"
	// EventPause: a 429/503 with Retry-After paused the account's calls for Duration, or a 429
	// without it for the account's own back-off (1 s, doubling while 429s repeat, at most 60 s).
	EventPause EventKind = "pause"
	// EventTransactions: B2 answered a call (whatever its status), which Backblaze bills as
	// Count transactions of Class (a listing: one per 1,000 names returned, started).
	EventTransactions EventKind = "transactions"
)

// Event is one observation. Fields that do not apply to a kind are zero.
type Event struct {
	Kind     EventKind
	Op       string
	Status   int
	Code     string
	Duration time.Duration
	Err      error
	Class    string
	Count    int
}

func (c *Client) emit(e Event) {
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(e)
	}
}
