// Package handlers serves b2jet's operations, authorize and list_file_names. It joins the wire
// types of schema, the handler contract of consumer and the B2 client of b2, each through small
// interfaces, and owns the two decisions between them: how an error becomes a contract error
// (errors.go: ContractErrorOf, the one classification, whose *ContractError the breaker reads and
// the consumer reads as its consumer.Fault), and the circuit breakers, one per account and
// operation, that keep requests away from B2 while it is down (breaker.go, gate.go). Errors
// (handlers.go) is the worker's consumer.ErrorReplier: the error reply of both operations, a
// listing's as its final part.
//
// Breakers count only retryable B2 failures; a permanent answer counts as a success because B2
// did answer, and 429s and cancellations are not counted at all (a 429 starts the account's
// shared Retry-After pause in b2 instead). While a breaker is open, requests already pulled for
// that account and operation are held, with progress signals to JetStream, instead of being put
// back: they spend no deliveries. The consumer's gate stops pulling an operation while its
// breaker is open for every served account, and runs the half-open probe itself.
//
// An allPages listing is streamed page by page (parts.go): every B2 page is sent as soon as it
// arrives, as at least one part of its own, and while a page call is slow the handler sends empty
// progress parts every Config.ProgressInterval, so that a publisher can tell a slow listing from
// a dead worker. While one page is sent the next is fetched (prefetch.go: one page ahead, two in
// memory at most). Before each part but a final one, the listing's checkpoint is stored in the
// request's consumer.Checkpoint (checkpoint.go), so that a redelivery resumes the listing with
// the part numbering going on, and repeats at most the one part it cannot know was sent.
package handlers
