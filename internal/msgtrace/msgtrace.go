// Package msgtrace is what both sides of the wire contract share to trace a request with
// OpenTelemetry: the W3C trace context (traceparent, tracestate) in NATS message headers, and
// the names that OpenTelemetry's messaging semantic conventions give NATS spans.
//
// The worker (consumer/) uses it to continue a publisher's trace; a publisher (the client
// package, b2jet request) uses StartPublish to start one. It knows neither JetStream's consumers
// nor B2, and sets no global OpenTelemetry state: the tracer provider is always passed in.
package msgtrace

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// SchemaURL is the semantic conventions version the spans of b2jet follow.
const SchemaURL = semconv.SchemaURL

// System is the messaging.system attribute of every b2jet messaging span. The conventions
// define no well-known value for NATS; "nats" is what NATS instrumentations use.
var System = semconv.MessagingSystemKey.String("nats")

// Header is a propagation.TextMapCarrier over NATS message headers (nats.Header and
// consumer.Header have this type). Unlike propagation.HeaderCarrier it does not canonicalize
// keys: NATS headers are case-sensitive and the contract's header is "traceparent".
type Header map[string][]string

// Get returns the first value of key.
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key with value.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Keys lists the header names.
func (h Header) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// propagator is W3C Trace Context, the contract's only propagation format.
var propagator = propagation.TraceContext{}

// Fields are the header names the trace context occupies ("traceparent", "tracestate").
func Fields() []string { return propagator.Fields() }

// Extract returns ctx carrying the remote span context of h's traceparent (and tracestate); ctx
// itself when h has none or an invalid one.
func Extract(ctx context.Context, h map[string][]string) context.Context {
	if len(h["traceparent"]) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, Header(h))
}

// MaxTraceStateBytes bounds the tracestate Inject writes: the 512 characters W3C Trace Context
// asks every participant to propagate, and no more, so that the trace context fits the room a
// reply keeps for its headers whatever tracestate a publisher sent.
const MaxTraceStateBytes = 512

// Inject writes sc into h as traceparent, and as tracestate when sc has one (cut to
// MaxTraceStateBytes by dropping whole list members from its end, as W3C allows). An invalid sc
// writes nothing.
func Inject(sc trace.SpanContext, h map[string][]string) {
	propagator.Inject(trace.ContextWithSpanContext(context.Background(), sc), Header(h))
	if ts := Header(h).Get("tracestate"); len(ts) > MaxTraceStateBytes {
		cut := ts[:MaxTraceStateBytes+1]
		if i := strings.LastIndexByte(cut, ','); i > 0 {
			h["tracestate"] = []string{ts[:i]}
		} else {
			delete(h, "tracestate")
		}
	}
}

// StartPublish starts the producer span of publishing one request to subject, for a publisher
// that has a tracer provider, and returns a context carrying it; the caller ends the span once
// the request is stored (or the publish failed). The span is named "publish <subject>" with the
// conventions' messaging attributes, plus attrs (b2jet.request_id, say).
//
// When h already carries a traceparent (the caller propagates its own creation context), h is
// left alone and the span links to that context, as the conventions ask; otherwise the span's
// own context is written into h, so that the worker's spans become its children. With a nil
// tp, StartPublish does nothing and returns ctx and a span that records nothing.
func StartPublish(ctx context.Context, tp trace.TracerProvider, subject string, h map[string][]string,
	attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if tp == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(System, semconv.MessagingOperationName("publish"), semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(subject)),
		trace.WithAttributes(attrs...),
	}
	given := trace.SpanContextFromContext(Extract(context.Background(), h))
	if given.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: given}))
	}
	ctx, span := tp.Tracer(instrumentation, trace.WithSchemaURL(SchemaURL)).Start(ctx, "publish "+subject, opts...)
	if !given.IsValid() {
		Inject(span.SpanContext(), h)
	}
	return ctx, span
}

// instrumentation names the tracer of StartPublish.
const instrumentation = "github.com/b2jet/b2jet/client"
