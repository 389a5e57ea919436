// Command b2jet-bench measures b2jet against the physical limit of its own loop, on the machine
// it runs on, and writes the figures to BENCHMARKS.md (`make bench`).
//
// It owns the benchmark program of issue #6: six scenarios (overhead against a minimal JetStream
// loop, live latency, latency hiding, a million-name listing, scale-out over worker processes,
// the session cache under token expiry), and a seventh, a listing whose worker is killed half-way
// and resumed by another, each repeated and interleaved with its baseline, reported
// as medians with ranges and as ratios against a bound measured or derived in the same run. Every
// part is real: an embedded NATS JetStream server (nats-server/v2), the b2/b2test fake of B2 over
// loopback HTTP, b2jet either wired in-process from its packages (consumer, handlers, b2) or run
// as the built `b2jet worker` binary when a figure needs a process of its own (peak RSS,
// scale-out).
//
// A benchmark reports; it never fails on a figure. It fails only when a run did not work (a
// request unanswered, an error reply, a count that does not add up). TestSmoke runs every
// scenario at toy sizes so that `make test` keeps the program from rotting.
//
// Usage:
//
//	go run ./cmd/b2jet-bench [-out BENCHMARKS.md] [-quick] [-reps 3] [-scenarios 1,2,3,4,5,6,7]
package main
