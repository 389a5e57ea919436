package obs

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition: nil when it holds, else why not.
type Check struct {
	Name string
	Test func() error
}

// Handler serves /metrics (Prometheus), /healthz (the process is alive: always 200) and /readyz
// (200 when every check holds, else 503 with the failing checks as JSON).
func Handler(m *Metrics, checks []Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		failing := map[string]string{}
		for _, c := range checks {
			if err := c.Test(); err != nil {
				failing[c.Name] = err.Error()
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if len(failing) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"ready": false, "failing": failing})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": true})
	})
	return mux
}

// Server is the worker's HTTP endpoint.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr (e.g. ":9090") at once, so that a bad address fails the worker's start.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server, waiting for open requests up to ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
