// Package fleet is the state the workers of one deployment share through JetStream key-value
// buckets, so that they act as one client of B2 (contract 1.1, "Fleet state"). It implements the
// small store and hook interfaces of package b2 over NATS, which b2 does not import.
//
// Sessions (sessions.go) is the B2_SESSIONS bucket: one sealed B2 session per account and the
// lease of the worker refreshing it (b2.SessionStore).
//
// State (state.go, pause.go, share.go, transactions.go) is the B2_FLEET bucket: per account, the
// Retry-After pause, the rate budget's share of each live worker, and the B2 transaction counts
// of each UTC day, with the optional daily budget. Each account's *Account is the b2.Config
// hooks (b2.SharedPause, b2.RateShare, b2.TransactionBook) of its client.
//
// A bucket that cannot be reached never stops a worker: each type's Fallback says why it is not
// in use (logged once), and the workers then use their process-local state, as without it; State
// keeps the pauses it saw, the share it had and the counts it made, which it writes when the
// bucket is back. Keys are built in keys.go.
package fleet
