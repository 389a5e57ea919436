// Package chaos is b2jet's fault-injection suite. It has no code outside its tests: each
// scenario is a test that runs real processes (the built b2jet binary as workers, nats-server
// binaries built from the version in go.mod, and the b2/b2test fake B2 as cmd/b2fake), publishes a
// known set of requests, breaks something (workers killed, servers restarted or killed, B2 down,
// throttling, slow or poison input, a hostile publisher, a full store) and then accounts for every
// request: each must end with exactly one final outcome, an ok reply or an error reply plus a dead
// letter.
//
// The scenarios, one file each: 1 kill -9 workers (big listings among the requests, whose B2
// list calls must stay near their pages: a killed listing resumes), 2 restart NATS, 3 kill cluster leaders, 4 B2
// outage, 5 429 storm, 6 slow B2, 7 poison input, 8 secrets, 9 the fleet as one B2 client (four
// workers under a 429 storm and token expiries at once: no call inside a pause, one authorize
// per expiry), 10 hostile publisher, 11 full store
// (the request and dead-letter streams at their max bytes: refused publishes are counted and
// published again once the stream was purged, refused dead letters wait unterminated through a
// worker's kill -9 until the dead-letter stream is purged).
//
// `make test` runs a short version of every scenario; `make chaos` runs the full sizes
// (-chaos.full), prints one summary table and, when every scenario passed, writes it between the
// chaos-summary markers of docs/reliability.md (-chaos.doc). Replies are captured by a stream of the test's own
// (CHAOS_REPLIES on chaos.reply.>), so a reply published while the test's connection was down
// is still counted.
package chaos
