// Package fleet is the state the workers of one deployment share through JetStream key-value
// buckets, so that they act as one client of B2 (contract 1.1, "Fleet state"). It implements the
// small store interfaces of package b2 over NATS, which b2 does not import.
//
// Sessions is the B2_SESSIONS bucket: one sealed B2 session per account and the lease of the
// worker refreshing it (b2.SessionStore). A bucket that cannot be reached is reported by
// Fallback and logged once; the workers then use their process-local state, as without it.
package fleet
