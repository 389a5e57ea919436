// Package console is the web console of `b2jet console`: an operator's view of b2jet's JetStream
// state (the overview of workers, consumers and streams), the dead letters with their attempt
// history, and one-click redrive, purge and replay.
//
// It owns the HTTP handlers, the html/template pages and the stylesheet embedded in the binary, and
// the console's security: basic auth, CSRF tokens on every state-changing request (always a
// POST), a Host check against DNS rebinding when it runs without auth, and the security headers.
// It uses no JavaScript; the overview refreshes itself with a meta refresh.
//
// Every read and repair goes through an Ops, the small interface over package consumer/ops that
// `b2jet dlq`, `replay` and `status` use too, so the console acts exactly as those commands do
// (the redrive loop guard included). Dead letters are attacker-controlled: subjects, headers and
// payloads are escaped by html/template, unprintable runes are shown as escapes, and payload
// fields and headers whose names say they hold a secret (tokens, keys, passwords) are shown as
// [REDACTED].
//
// The package knows nothing of the command line: package main reads the flags, connects to NATS
// and listens; Handler is all it needs.
package console
