// Package worker runs a b2jet worker inside a Go program: the library behind `b2jet worker`, as
// net/http's Server is the library behind a web server's main. A program that already has a NATS
// connection and B2 application keys builds a Worker from a Config (New), then calls Run with the
// connection (or Start, which returns once the worker pulls and gives a stop function);
// requests published on <prefix>.req.> (with package client, the `nats` CLI or any publisher of
// the contract in docs/contract.md) are answered until Run's context ends.
//
// It owns the wiring, which is the same wherever a worker runs (the b2jet binary, the benchmark,
// the tests): one b2.Client per account, the handlers of every operation with their circuit
// breakers (package handlers), a consumer.Worker per connection serving each operation through
// its durable consumer (package consumer), and the status service that `b2jet status` asks
// (package consumer/ops). It also answers what a host process asks of it while it runs: readiness
// (Ready, Checks: the conditions of the b2jet binary's /readyz) and the status snapshot (Status).
//
// What stays with the program: where the connection comes from (its servers, credentials,
// reconnect policy) and what happens when it is closed for good (Run returns an error matching
// nats.ErrConnectionClosed; the b2jet binary dials again and calls Run once more, keeping the B2
// sessions and breakers), flags and files, metrics (the Config's observers feed them) and the
// HTTP endpoint. The package reads no environment and starts no goroutine that outlives Run.
package worker
