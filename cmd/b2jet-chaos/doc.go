// Package chaos is b2jet's fault-injection suite. It has no code outside its tests: each
// scenario is a test that runs real processes (the built b2jet binary as workers, nats-server
// binaries built from the version in go.mod, and the b2/b2test fake B2 as cmd/b2fake), publishes a
// known set of requests, breaks something (workers killed, servers restarted or killed, B2 down,
// throttling, slow or poison input) and then accounts for every request: each must end with
// exactly one final outcome, an ok reply or an error reply plus a dead letter.
//
// `make test` runs a short version of every scenario; `make chaos` runs the full sizes
// (-chaos.full) and prints one summary table. Replies are captured by a stream of the test's own
// (CHAOS_REPLIES on chaos.reply.>), so a reply published while the test's connection was down
// is still counted.
package chaos
