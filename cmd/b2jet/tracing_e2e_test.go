package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/cmd/internal/procenv"
	"github.com/b2jet/b2jet/schema"
)

// collector is a fake OTLP/HTTP trace receiver.
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string // service.name of each resource received
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		var req collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(raw, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					c.services = append(c.services, kv.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				c.spans = append(c.spans, ss.GetSpans()...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) named(name string) []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range c.spans {
		if s.GetName() == name {
			out = append(out, s)
		}
	}
	return out
}

// The worker configured by OTEL_EXPORTER_OTLP_ENDPOINT exports a consumer span per delivery, the
// child of the request's traceparent, with its B2 calls beneath it; the reply carries the span's
// trace context; and the spans still queued when it stops are flushed on drain (the batch delay
// is set far beyond the test, so only the shutdown flush can deliver them).
func TestEndToEndTracing(t *testing.T) {
	col := newCollector(t)
	env := procenv.Clean("OTEL_EXPORTER_OTLP_ENDPOINT="+col.URL, "OTEL_BSP_SCHEDULE_DELAY=600000")
	w := startWorker(t, env, "--sandbox", "--embedded-port", "0", "--data-dir", t.TempDir(), "--drain-timeout", "5s")
	tracing := w.waitLog(t, "tracing on", 30*time.Second)
	assert.Equal(t, "http/protobuf", tracing["protocol"])
	url := w.waitLog(t, "no NATS_URL", 30*time.Second)["url"].(string)
	w.waitLog(t, "b2jet worker ready", 30*time.Second)

	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	c, err := client.New(nc, client.Options{Timeout: 20 * time.Second})
	require.NoError(t, err)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx := client.WithTraceparent(t.Context(), "00-"+traceID+"-"+parentID+"-01")
	call, err := c.Publish(ctx, client.Request{Op: schema.OpListFileNames,
		Body: schema.ListFileNamesRequest{BucketName: SandboxBucket, Prefix: "logs/", MaxFileCount: 5}})
	require.NoError(t, err)
	defer call.Close()
	reply, err := call.Next(ctx)
	require.NoError(t, err)
	tp := strings.Split(reply.Header.Get(schema.HeaderTraceParent), "-")
	require.Len(t, tp, 4, "the reply has a traceparent")
	assert.Equal(t, traceID, tp[1], "the reply stays in the publisher's trace")
	assert.NotEqual(t, parentID, tp[2], "with the worker's span as its parent")

	assert.Empty(t, col.named("process b2.req.list_file_names"), "nothing exported before the drain")
	require.NoError(t, w.Stop(20*time.Second))

	deliveries := col.named("process b2.req.list_file_names")
	require.Len(t, deliveries, 1, "flushed on drain")
	d := deliveries[0]
	assert.Equal(t, traceID, hex.EncodeToString(d.GetTraceId()))
	assert.Equal(t, parentID, hex.EncodeToString(d.GetParentSpanId()))
	assert.Equal(t, tp[2], hex.EncodeToString(d.GetSpanId()))
	assert.Equal(t, tracepb.Span_SPAN_KIND_CONSUMER, d.GetKind())
	lists := col.named("b2_list_file_names")
	require.Len(t, lists, 1)
	assert.True(t, bytes.Equal(d.GetSpanId(), lists[0].GetParentSpanId()), "the B2 call is the delivery's child")
	col.mu.Lock()
	assert.Contains(t, col.services, "b2jet")
	col.mu.Unlock()
}
