package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracingShutdownTimeout bounds the flush of the last spans when the worker stops.
const tracingShutdownTimeout = 5 * time.Second

// Protocols of OTEL_EXPORTER_OTLP_PROTOCOL that b2jet exports with.
const (
	protocolHTTP = "http/protobuf" // the OpenTelemetry default
	protocolGRPC = "grpc"
)

// tracingPlan is what the OTEL_* environment asks of the worker's tracing.
type tracingPlan struct {
	on       bool
	protocol string // protocolHTTP or protocolGRPC
	endpoint string // for the log line; the exporter reads it from the environment itself
}

// tracingFromEnv reads the standard OpenTelemetry variables. Tracing is on when an OTLP endpoint
// is set (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT), unless
// OTEL_TRACES_EXPORTER is "none" or OTEL_SDK_DISABLED is "true". The protocol is
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf.
// Every other OTEL_* setting (headers, TLS, timeout, compression, sampler, batching, resource)
// is read by the OpenTelemetry SDK and exporters themselves.
func tracingFromEnv(getenv func(string) string) (tracingPlan, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return tracingPlan{}, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "", "otlp":
	case "none":
		return tracingPlan{}, nil
	default:
		return tracingPlan{}, badSetting("OTEL_TRACES_EXPORTER", "%q is not supported: b2jet exports traces with otlp (or none)", exp)
	}
	endpoint := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	if endpoint == "" {
		return tracingPlan{}, nil
	}
	protocol := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	switch protocol {
	case "":
		protocol = protocolHTTP
	case protocolHTTP, protocolGRPC:
	default:
		return tracingPlan{}, badSetting("OTEL_EXPORTER_OTLP_PROTOCOL", "%q is not supported: use %s or %s", protocol, protocolHTTP, protocolGRPC)
	}
	return tracingPlan{on: true, protocol: protocol, endpoint: endpoint}, nil
}

// firstSet returns the value of the first variable of names that is set and not blank.
func firstSet(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

// startTracing builds the worker's tracer provider: an OTLP exporter behind the SDK's batch span
// processor, with the service's resource (service.name b2jet unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise). With tracing off it returns a nil provider, which the
// consumer and the B2 clients take as "no tracing", and a no-op shutdown. shutdown flushes the
// spans still queued; the worker calls it once it has drained. The exporter connects lazily: an
// unreachable collector costs dropped spans and a logged error, never a failed start.
func startTracing(ctx context.Context, p tracingPlan, log *slog.Logger) (trace.TracerProvider, func(), error) {
	if !p.on {
		return nil, func() {}, nil
	}
	var exp sdktrace.SpanExporter
	var err error
	if p.protocol == protocolGRPC {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, nil, badSetting("OTEL_EXPORTER_OTLP_ENDPOINT", "%v", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("b2jet"), semconv.ServiceVersion(version)),
		resource.WithHost(),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, nil, badSetting("OTEL_RESOURCE_ATTRIBUTES", "%v", err)
	}
	// Exporter failures (collector down) are logged rather than printed by the SDK's default.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "error", err) }))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	log.Info("tracing on", "protocol", p.protocol, "endpoint", redactURLs(p.endpoint))
	return tp, func() {
		sctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("tracing: spans not flushed", "error", fmt.Errorf("shutdown: %w", err))
		}
	}, nil
}

// tracingEnv is the environment the worker's tracing reads.
var tracingEnv = os.Getenv
