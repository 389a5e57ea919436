package consumer

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/internal/msgtrace"
)

// Attributes of the delivery span that the messaging conventions do not define.
const (
	attrDeliveryCount = attribute.Key("b2jet.delivery_count") // JetStream's NumDelivered
	attrMaxAttempts   = attribute.Key("b2jet.max_attempts")
	attrStreamSeq     = attribute.Key("b2jet.stream_seq")
	attrOp            = attribute.Key("b2jet.op")
	attrAccount       = attribute.Key("b2jet.account")
	attrRequestID     = attribute.Key("b2jet.request_id")
	attrOutcome       = attribute.Key("b2jet.outcome")
	attrDelayMs       = attribute.Key("b2jet.delay_ms")
	attrErrorCode     = attribute.Key("b2jet.error_code")
	attrExhausted     = attribute.Key("b2jet.exhausted")
)

// instrumentation names the worker's tracer.
const instrumentation = "github.com/b2jet/b2jet/consumer"

// newTracer returns the worker's tracer, nil when tracing is off (no provider).
func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(instrumentation, trace.WithSchemaURL(msgtrace.SchemaURL))
}

// startSpan starts the delivery's consumer span, the child of the request's traceparent (and
// linked to it, as the messaging conventions ask of a process span), and makes replies and the
// dead letter carry the span's own trace context. With tracing off it does nothing and
// allocates nothing: no attribute is built.
func (d *delivery) startSpan() {
	tr := d.r.w.tracer
	if tr == nil {
		return
	}
	m := d.m
	parent := msgtrace.Extract(context.Background(), m.Header)
	destination := m.Subject
	attrs := []attribute.KeyValue{
		msgtrace.System,
		semconv.MessagingOperationName("process"),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingDestinationName(m.Subject),
		semconv.MessagingConsumerGroupName(d.r.consumerName()),
		semconv.MessagingMessageID(storedID(m)),
		semconv.MessagingMessageBodySize(len(m.Data)),
		attrDeliveryCount.Int(m.Attempt),
		attrMaxAttempts.Int(m.MaxAttempts),
		attrStreamSeq.Int64(int64(m.Sequence)),
		attrOp.String(m.Op),
		attrAccount.String(m.Account),
	}
	if d.accountToken != "" {
		// The account token is the publisher's: the template keeps span names low-cardinality.
		destination = d.r.w.cfg.Subjects.Request(m.Op, "{account}")
		attrs = append(attrs, semconv.MessagingDestinationTemplate(destination))
	}
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(d.received),
		trace.WithAttributes(attrs...),
	}
	if sc := trace.SpanContextFromContext(parent); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	_, d.span = tr.Start(parent, "process "+destination, opts...)
	th := Header{}
	msgtrace.Inject(d.span.SpanContext(), th)
	d.traceHeader = th
	d.rw.trace = th
}

// spanContext returns parent carrying the delivery's span, for Handle and the error reply (whose
// B2 calls become its children).
func (d *delivery) spanContext(parent context.Context) context.Context {
	if d.span == nil {
		return parent
	}
	return trace.ContextWithSpan(parent, d.span)
}

// endSpan ends the delivery's span with the request id the handler resolved and the outcome.
func (d *delivery) endSpan() {
	if d.span == nil {
		return
	}
	d.span.SetAttributes(attrRequestID.String(d.m.RequestID), attrOutcome.String(d.spanOutcome))
	d.span.End()
}

// spanEnding records how the delivery ends (acked, dead_lettered, ...); err, if not nil, is the
// failure of that step (a lost ack, say), added as an event.
func (d *delivery) spanEnding(outcome string, err error) {
	if d.span == nil {
		return
	}
	d.spanOutcome = outcome
	if err != nil {
		d.span.AddEvent(outcome, trace.WithAttributes(semconv.ExceptionMessage(err.Error())))
	}
}

// spanNak records a nak: an event named after its outcome (retry, shutdown_nak) with the delay
// and the cause. A retry marks the span failed: this delivery's attempt did not succeed.
func (d *delivery) spanNak(delay time.Duration, outcome string, cause error) {
	if d.span == nil {
		return
	}
	d.spanOutcome = outcome
	attrs := []attribute.KeyValue{attrDelayMs.Int64(delay.Milliseconds())}
	if cause != nil {
		attrs = append(attrs, semconv.ExceptionMessage(cause.Error()))
	}
	d.span.AddEvent(outcome, trace.WithAttributes(attrs...))
	if outcome == nakRetry && cause != nil {
		d.span.SetStatus(codes.Error, cause.Error())
		d.span.SetAttributes(semconv.ErrorTypeOther)
	}
}

// spanDeadLettered records the rejection: an event, the error status and the contract's error
// code as error.type.
func (d *delivery) spanDeadLettered(rej rejection, exhausted bool) {
	if d.span == nil {
		return
	}
	d.spanOutcome = "dead_lettered"
	d.span.AddEvent("dead_letter", trace.WithAttributes(attrErrorCode.String(rej.Code), attrExhausted.Bool(exhausted)))
	d.span.SetStatus(codes.Error, rej.Message)
	d.span.SetAttributes(semconv.ErrorTypeKey.String(rej.Code))
}

// deadLetterHeader returns the request headers a dead letter is built from: with tracing on,
// with the trace context of the delivery's span instead of the request's.
func (d *delivery) deadLetterHeader() Header {
	if d.traceHeader == nil {
		return d.m.Header
	}
	h := d.m.Header.Clone()
	if h == nil {
		h = Header{}
	}
	for _, k := range msgtrace.Fields() {
		delete(h, k)
	}
	for k, v := range d.traceHeader {
		h[k] = v
	}
	return h
}
