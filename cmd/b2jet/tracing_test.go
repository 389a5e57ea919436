package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTracingFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want tracingPlan
		bad  string // the setting a configuration error names
	}{
		{name: "no endpoint: off", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{name: "endpoint: http/protobuf by default",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			want: tracingPlan{on: true, protocol: protocolHTTP, endpoint: "http://collector:4318"}},
		{name: "traces endpoint and protocol win",
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			want: tracingPlan{on: true, protocol: protocolGRPC, endpoint: "http://traces:4317"}},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			want: tracingPlan{on: true, protocol: protocolGRPC, endpoint: "http://collector:4317"}},
		{name: "exporter none: off", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}},
		{name: "SDK disabled: off", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}},
		{name: "exporter otlp", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces", "OTEL_TRACES_EXPORTER": "otlp"},
			want: tracingPlan{on: true, protocol: protocolHTTP, endpoint: "http://c:4318/v1/traces"}},
		{name: "other exporter", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "console"},
			bad: "OTEL_TRACES_EXPORTER"},
		{name: "http/json", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			bad: "OTEL_EXPORTER_OTLP_PROTOCOL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tracingFromEnv(func(k string) string { return tc.env[k] })
			if tc.bad != "" {
				var ce *configError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, tc.bad, ce.Setting)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// Tracing off is a nil provider: the consumer and the B2 clients then build nothing per request.
func TestStartTracingOff(t *testing.T) {
	tp, stop, err := startTracing(context.Background(), tracingPlan{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Nil(t, tp)
	stop()
}

// Both exporters start without reaching their collector (they connect lazily).
func TestStartTracingExporters(t *testing.T) {
	for _, protocol := range []string{protocolHTTP, protocolGRPC} {
		t.Run(protocol, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			tp, stop, err := startTracing(context.Background(), tracingPlan{on: true, protocol: protocol, endpoint: "http://127.0.0.1:1"},
				slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			require.NotNil(t, tp)
			stop()
		})
	}
}
