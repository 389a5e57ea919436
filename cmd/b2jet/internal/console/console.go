package console

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/schema"
)

// Ops is what the console needs of package consumer/ops; *ops.Ops implements it.
type Ops interface {
	Status(ctx context.Context, workerWait time.Duration) (ops.Status, error)
	DeadLetterPage(ctx context.Context, f ops.Filter, before uint64, size int) (ops.Page, error)
	DeadLetter(ctx context.Context, seq uint64) (ops.DeadLetter, error)
	Redrive(ctx context.Context, opts ops.RedriveOptions) ([]ops.RedriveResult, error)
	Purge(ctx context.Context, f ops.Filter, all bool) (int, error)
	Replay(ctx context.Context, opts ops.ReplayOptions) (ops.ReplayReport, error)
}

var _ Ops = (*ops.Ops)(nil)

// Defaults of Config's zero fields.
const (
	DefaultRefresh       = 5 * time.Second
	DefaultPageSize      = 50
	DefaultActionTimeout = 4 * time.Minute
)

// Config configures a console. Only Ops is required.
type Config struct {
	// Ops reads and repairs the JetStream state.
	Ops Ops
	// Streams names the request and dead-letter streams on the pages; zero fields read as the
	// contract's names.
	Streams ops.Config
	// User and Password, when User is set, are the basic auth credentials every request must
	// carry. Without them the console only answers requests whose Host is a loopback name or
	// address (see LoopbackOnly).
	User, Password string
	// LoopbackOnly refuses requests whose Host header is not localhost or a loopback address
	// (DNS rebinding: a web page whose name resolves to 127.0.0.1 must not read the console).
	// It applies only without User; New sets it then.
	LoopbackOnly bool
	// Refresh is how often the overview reloads itself; default DefaultRefresh.
	Refresh time.Duration
	// WorkerWait is how long the overview gathers worker answers; 0 means ops.DefaultWorkerWait.
	WorkerWait time.Duration
	// PageSize is the number of dead letters per page; default DefaultPageSize, at most
	// ops.MaxPageSize.
	PageSize int
	// MaxRedrives is the redrive loop guard; 0 means ops.DefaultMaxRedrives.
	MaxRedrives int
	// ActionTimeout bounds a redrive, purge or replay. They run to completion (or this timeout)
	// even when the browser goes away, so that what they did is logged; default
	// DefaultActionTimeout.
	ActionTimeout time.Duration
	// Version is shown in the footer.
	Version string
	// Log receives one line per state-changing action (who, what, outcome); nil discards.
	Log *slog.Logger
}

// Console serves the pages. Create it with New.
type Console struct {
	cfg     Config
	csrfKey []byte
	handler http.Handler
}

// New returns a console with cfg's defaults applied. Its CSRF secret is random per process: a
// restart invalidates the forms of open pages (a reload fixes that).
func New(cfg Config) (*Console, error) {
	if cfg.Ops == nil {
		return nil, errors.New("console: Config.Ops is nil")
	}
	if cfg.User == "" && cfg.Password != "" {
		return nil, errors.New("console: a password without a user")
	}
	if cfg.User != "" && cfg.Password == "" {
		return nil, errors.New("console: a user without a password")
	}
	if cfg.Streams.RequestsStream == "" {
		cfg.Streams.RequestsStream = schema.StreamRequests
	}
	if cfg.Streams.DLQStream == "" {
		cfg.Streams.DLQStream = schema.StreamDLQ
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	cfg.PageSize = min(cfg.PageSize, ops.MaxPageSize)
	if cfg.MaxRedrives <= 0 {
		cfg.MaxRedrives = ops.DefaultMaxRedrives
	}
	if cfg.ActionTimeout <= 0 {
		cfg.ActionTimeout = DefaultActionTimeout
	}
	if cfg.User == "" {
		cfg.LoopbackOnly = true
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Console{cfg: cfg, csrfKey: make([]byte, 32)}
	if _, err := rand.Read(c.csrfKey); err != nil {
		return nil, err
	}
	c.handler = c.secure(c.routes())
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.handler.ServeHTTP(w, r) }

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.FileServerFS(staticFS))
	mux.HandleFunc("GET /{$}", c.overview)
	mux.HandleFunc("GET /dead-letters", c.deadLetters)
	mux.HandleFunc("GET /dead-letters/{seq}", c.deadLetter)
	mux.HandleFunc("GET /dead-letters/{seq}/redrive", c.confirmRedrive)
	mux.HandleFunc("POST /dead-letters/{seq}/redrive", c.redrive)
	mux.HandleFunc("GET /dead-letters/{seq}/purge", c.confirmPurge)
	mux.HandleFunc("POST /dead-letters/{seq}/purge", c.purge)
	mux.HandleFunc("GET /dead-letters/redrive", c.confirmBulkRedrive)
	mux.HandleFunc("POST /dead-letters/redrive", c.bulkRedrive)
	mux.HandleFunc("GET /replay", c.replayForm)
	mux.HandleFunc("POST /replay", c.replay)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "No such page.")
	})
	return mux
}

// actionContext is the context of a state-changing action: it outlives the browser (see
// Config.ActionTimeout).
func (c *Console) actionContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), c.cfg.ActionTimeout)
}

// who names the operator of r for the action log.
func (c *Console) who(r *http.Request) string {
	if u, _, ok := r.BasicAuth(); ok {
		return u
	}
	return "(loopback, no auth)"
}
