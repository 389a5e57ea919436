package b2

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Attributes of the B2 call spans and events.
const (
	attrOperation  = attribute.Key("b2.operation")
	attrAccount    = attribute.Key("b2.account")
	attrBucketID   = attribute.Key("b2.bucket.id")
	attrBucketName = attribute.Key("b2.bucket.name")
	attrErrorCode  = attribute.Key("b2.error.code")
	attrPauseMs    = attribute.Key("b2.pause_ms")
	attrWaitMs     = attribute.Key("b2.wait_ms")
)

// instrumentation names the client's tracer.
const instrumentation = "github.com/b2jet/b2jet/b2"

// newTracer returns the client's tracer, nil when tracing is off.
func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(instrumentation, trace.WithSchemaURL(semconv.SchemaURL))
}

// startSpan starts the client span of one HTTP call to B2, the child of ctx's span, named after
// the B2 operation; nil when tracing is off (nothing is built then).
func (c *Client) startSpan(ctx context.Context, r request) trace.Span {
	if c.tracer == nil {
		return nil
	}
	attrs := []attribute.KeyValue{attrOperation.String(r.op), semconv.HTTPRequestMethodKey.String(r.method)}
	if c.cfg.Name != "" {
		attrs = append(attrs, attrAccount.String(c.cfg.Name))
	}
	if r.bucketID != "" {
		attrs = append(attrs, attrBucketID.String(r.bucketID))
	}
	if r.bucketName != "" {
		attrs = append(attrs, attrBucketName.String(r.bucketName))
	}
	if u, err := url.Parse(r.url); err == nil && u.Hostname() != "" {
		attrs = append(attrs, semconv.ServerAddress(u.Hostname()))
	}
	_, span := c.tracer.Start(ctx, r.op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return span
}

// endSpan ends a B2 call span with the HTTP status (0: no answer) and, for a failure, B2's error
// code, the error status and error.type (the status code, or the error's kind without one).
func endSpan(span trace.Span, status int, code string, err error) {
	if span == nil {
		return
	}
	if status != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
	if code != "" {
		span.SetAttributes(attrErrorCode.String(code))
	}
	if err != nil {
		errType := "_OTHER"
		var te *TransportError
		switch {
		case status != 0 && status != 200:
			errType = strconv.Itoa(status)
		case errors.Is(err, context.Canceled):
			errType = "canceled"
		case errors.Is(err, context.DeadlineExceeded):
			errType = "timeout"
		case errors.As(err, &te):
			errType = "transport"
		}
		span.SetAttributes(semconv.ErrorTypeKey.String(errType))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// spanPause records on a B2 call span that its answer paused the account's calls for d.
func spanPause(span trace.Span, status int, d time.Duration) {
	if span == nil || d <= 0 {
		return
	}
	span.AddEvent("b2.pause", trace.WithAttributes(semconv.HTTPResponseStatusCode(status), attrPauseMs.Int64(d.Milliseconds())))
}

// waitEvent records on the caller's span (the request being handled) that a B2 call of op waits
// d for the account's Retry-After pause (name "b2.pause.wait") or its rate budget
// ("b2.rate_limit.wait"). It needs no tracer of the client's: a caller that traces gets it.
func waitEvent(ctx context.Context, name, op string, d time.Duration) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.AddEvent(name, trace.WithAttributes(attrOperation.String(op), attrWaitMs.Int64(d.Milliseconds())))
}
