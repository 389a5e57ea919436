// Package consumer is the JetStream side of b2jet. It owns everything that knows NATS:
//
//   - the streams (B2_REQUESTS, B2_DLQ) and the durable pull consumer of every operation, created or
//     updated at start without touching settings an operator changed by hand (setup.go), every
//     stream and bucket bounded and discarding new messages when full, so that a full stream
//     refuses a publish instead of dropping what it stored (config.go, setup.go), and
//     created again when one vanishes under a running worker (recover.go); the consumers' shared
//     settings (ack wait, max deliver) are read from them and re-read every few seconds, so that
//     every worker decides the last attempt as the server does (settings.go);
//   - dispatch: per operation one dispatcher that pulls exactly as many messages as it has free
//     handler slots, behind the operation's Gate (worker.go, dispatch.go);
//   - the life of one delivery: building the Message, running the Handler under a watchdog deadline
//     shorter than the ack wait, and turning the outcome into an ack, a delayed nak or a rejection
//     (process.go, watchdog.go, decide.go, backoff.go, reject.go);
//   - replies (replywriter.go) and dead letters (deadletter.go), as the wire contract defines them,
//     with each account's allow-list of Reply-To subject patterns (replysubjects.go);
//   - checkpoints (checkpoint.go): one small value per stored request in a KV bucket, which a
//     handler saves and its request's later deliveries load (a listing resumes from it), removed
//     when the request is acked or dead-lettered;
//   - reconciliation (reconcile.go, pendingstore.go): a request is terminated only after its dead
//     letter is stored; a dead letter that cannot be stored (the dead-letter stream full) is
//     recorded in a bucket and retried until it is, by the request's next delivery or, after its
//     last, by every worker, and a request that reaches max deliveries without one gets it from the
//     server's advisories;
//   - the trim of the request stream (trim.go): answered requests stay for replay and would fill
//     it, so from Config.RequestsTrimAt percent of a limit every worker purges the oldest down to
//     RequestsTrimTo percent, never past a request that some consumer of the stream (anyone's)
//     has not finished or whose dead letter is pending; replay reaches only what trimming left;
//   - graceful shutdown, shaped like http.Server.Shutdown (worker.go);
//   - tracing (tracing.go): with Config.TracerProvider, one OpenTelemetry consumer span per
//     delivery, the child of the request's traceparent, carried by the handler's context and
//     sent on replies and dead letters; without it nothing is built per message.
//
// Handlers never ack and never see NATS: they get a *Message and a ReplyWriter and return an error
// (Handler has one method, Handle; HandlerFunc adapts a function). The consumer reads that error
// once as a Fault (fault.go): the error's own when it is a Faulter (b2jet's handlers return such
// errors), else the consumer's rules, with Permanent and RetryAfter marks on top (marks.go). The
// ack decision, the attempt history, the error reply and the dead letter all take that value. The
// consumer is the only retry layer: a failed delivery is naked with a delay (never a bare Nak), and
// after the last attempt, or on a fault that is not retryable, the worker's ErrorReplier
// (Config.Errors) writes the error reply and the consumer dead-letters the request.
//
// A handler's context has no deadline. It is cancelled with cause ErrNoProgress by the watchdog,
// AckWait − max(AckWait/5, 200ms) after the last progress signal (ReplyWriter.Progress or a
// successful Send), and with cause ErrShutdown when the drain timeout expires; context.Cause tells
// them apart. Handlers that call out (B2) should use their own per-call timeouts as well.
//
// The package knows nothing of Backblaze B2: it never imports b2/ or handlers/.
package consumer
