// Package ops is the operator's side of b2jet's JetStream state: the library behind the
// `b2jet dlq`, `b2jet replay` and `b2jet status` commands, and the status service every worker
// registers.
//
// It owns:
//
//   - reading dead letters from the dead-letter stream, newest first, filtered by operation,
//     account, error code and age (deadletters.go), a page at a time in bounded memory (page.go),
//     and showing one with its decoded body;
//   - redriving dead letters to their original request subject with a message id of its own run and a
//     loop guard, deleting each from the dead-letter stream only after the republish is
//     acknowledged (redrive.go), and purging them (purge.go);
//   - replaying requests already stored in the request stream, acked or not (replay.go);
//   - the status of streams, consumers, dead letters and live workers (status.go), and the worker
//     side of it, a NATS micro service (service.go).
//
// Everything is plain structs in and plain structs out, context first; nothing prints. The package
// knows JetStream and the wire contract (package schema) and nothing of Backblaze B2.
//
// # Reading a stream
//
// Listings use an ordered consumer filtered by subject (e.g. "b2.dlq.authorize.acme") and stop at
// the stream's last sequence as seen when the walk starts, so a walk always ends, and a replay never
// reads the requests it republishes itself (no loop). The ordered consumer is deleted when the walk
// ends. Single messages are read with Stream.GetMsg; the headers the server adds to a direct get
// (Nats-Stream, Nats-Sequence, Nats-Subject, Nats-Time-Stamp, Nats-Last-Sequence, ...) are removed
// before a record is returned or republished.
//
// # Accounts in filters
//
// A request subject without an account token uses the account "default" (the contract), so the
// account filter "default" matches both "b2.dlq.<op>" and "b2.dlq.<op>.default". DeadLetter.Account
// is "default" for both.
//
// # Redrive and replay headers
//
// A redriven request is the dead letter's payload byte for byte and its headers, minus the
// server-added ones and the dead letter's own Nats-Msg-Id, plus B2-Redrive-Of (the dead letter's
// sequence in the dead-letter stream) and B2-Redrive-Count (one more than the dead letter's own
// count, 0 when it has none). Its Nats-Msg-Id is "redrive-<dlq stream>-<dlq seq>-<run>". A dead
// letter already redriven MaxRedrives times is refused, and so is one whose subject holds control
// characters or invalid UTF-8 (its B2-Original-Subject cannot match it).
//
// A replayed request is the stored request's payload and headers, plus B2-Replay-Of (its sequence
// in the request stream), with Nats-Msg-Id "replay-<stream>-<seq>-<run>". Its Reply-To is
// replaced when a ReplyTo is given. So that a replay answers with the original request id, the
// original Nats-Msg-Id (if any) is kept as B2-Original-Msg-Id and, when the request had no
// B2-Request-Id, copied into B2-Request-Id (the request id resolution order of the contract then
// gives the same id). Stored requests that are replays themselves (B2-Replay-Of) are skipped
// unless ReplayOptions.IncludeReplays is set.
//
// # Message ids and the duplicate window
//
// Tenants publish to the same request stream and so share its duplicate window: a Nats-Msg-Id
// another publisher can predict, it can store first, and the stream then drops the real message
// as a duplicate. So <run> is 128 random bits chosen once per Ops (one operator run): a publish
// retried after a lost PubAck is still stored once, and nobody can pre-empt the id. A publish the
// stream reports as a duplicate counts as done only after the stored message at the PubAck's
// sequence was read and found to be the same (subject, payload, every header); otherwise the
// error wraps ErrDuplicateMismatch and, for a redrive, the dead letter is kept. A second run
// redrives or replays anew: a dead letter whose redrive was acknowledged but whose deletion failed
// is purged, not redriven again.
//
// # Worker discovery
//
// Every worker registers a micro service named "b2jet" (RegisterWorker), so `nats micro ls b2jet`,
// `nats micro info b2jet` and `nats micro stats b2jet` show them. Its endpoint "status" listens on
// "<prefix>.status" (e.g. "b2.status") without a queue group, so every worker answers one request;
// the reply is a WorkerStatus as JSON. Status sends one request there and gathers every reply that
// arrives within the worker wait. `nats req b2.status "{}" --replies 0` does the same by hand. The
// subject sits under the deployment's prefix, so deployments with different prefixes on one NATS
// account do not see each other's workers; the service metadata key "prefix" says which prefix a
// worker serves.
package ops
