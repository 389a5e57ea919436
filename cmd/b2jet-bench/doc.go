// Command b2jet-bench measures b2jet against the physical limits of this machine and writes the
// figures to BENCHMARKS.md (`make bench`).
//
// It owns the benchmark program of issue #6, nine scenarios: overhead against the raw loop a
// user would write with nats.go's jetstream Consume() (cmd/b2jet-bench/rawloop), live latency,
// latency hiding behind 200 ms B2 calls against Little's law, a million-name listing against the
// b2.Client page loop alone (cmd/b2jet-bench/pageloop) and a listing of 300 ms pages, scale-out
// over worker processes, the session cache under token expiry (four worker processes sharing one
// session: authorize calls per expiry for the fleet), a listing whose worker is killed
// half-way and resumed by another, fairness between a flooding account and a quiet one, and the
// idle cost of many accounts on several workers. Each is repeated and interleaved with its
// baseline, reported as medians with ranges and as ratios against a bound measured or derived in
// the same run. Every part is real: a NATS JetStream server (nats-server/v2, embedded, or a
// process of its own where its CPU is measured), the b2/b2test fake of B2 over loopback HTTP,
// and b2jet as the built `b2jet worker` binary, a process of its own with its default flags
// (package cmd/internal/workerproc runs it and reads its CPU time and memory).
//
// A benchmark reports; it never fails on a figure. It fails only when a run did not work (a
// request unanswered, an error reply, a count that does not add up). TestSmoke runs every
// scenario at toy sizes so that `make test` keeps the program from rotting.
//
// Usage:
//
//	go run ./cmd/b2jet-bench [-out BENCHMARKS.md] [-quick] [-reps 3] [-scenarios 1,2,3,4,5,6,7,8,9]
package main
