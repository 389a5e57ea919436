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

// Check is one readiness condition: nil when it holds, else why not. A Degraded check that fails
// is listed under "degraded" and leaves the endpoint ready.
type Check struct {
	Name     string
	Test     func() error
	Degraded bool
}

// Handler serves /metrics (Prometheus), /healthz (the process is alive: always 200) and /readyz
// (200 when every check that is not Degraded holds, else 503 with the failing checks as JSON;
// either way with the failing Degraded checks under "degraded").
func Handler(m *Metrics, checks []Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		failing, degraded := map[string]string{}, map[string]string{}
		for _, c := range checks {
			if err := c.Test(); err != nil {
				if c.Degraded {
					degraded[c.Name] = err.Error()
				} else {
					failing[c.Name] = err.Error()
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		body := map[string]any{"ready": len(failing) == 0}
		if len(degraded) > 0 {
			body["degraded"] = degraded
		}
		if len(failing) > 0 {
			body["failing"] = failing
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(body)
	})
	return mux
}

// Server is the worker's HTTP endpoint.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Limits bound what clients of the endpoint can hold: without them, idle keep-alive connections
// were never closed and 20,000 of them exhausted the worker's file descriptors. A zero field
// takes its default.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers (a connection that sends nothing is
	// closed after it); default 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request; default 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, from the end of the request's headers; default 30s.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next request; default
	// 30s, so a Prometheus that scrapes every 15s keeps its connection.
	IdleTimeout time.Duration
	// MaxConns caps the open connections; default 64. Connections over it are not accepted until
	// one closes: they wait in the kernel's listen backlog and take no file descriptor of the
	// process.
	MaxConns int
}

// Defaults of Limits.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
	DefaultMaxConns          = 64
	// maxHeaderBytes bounds a request's headers: the endpoint takes no input.
	maxHeaderBytes = 16 << 10
)

func (l Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	return l
}

// Listen binds addr (e.g. "127.0.0.1:9090") at once, so that a bad address fails the worker's
// start, and serves h within lim.
func Listen(addr string, h http.Handler, lim Limits) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	lim = lim.withDefaults()
	return &Server{ln: LimitListener(ln, lim.MaxConns), srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}}, nil
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
