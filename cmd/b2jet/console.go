package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/b2jet/b2jet/cmd/b2jet/internal/console"
	"github.com/b2jet/b2jet/cmd/b2jet/internal/obs"
)

// ConsoleCmd is `b2jet console`: the web console.
type ConsoleCmd struct {
	OpsFlags `embed:""`

	Listen           string        `name:"listen" env:"B2JET_CONSOLE_LISTEN" default:"127.0.0.1:8080" help:"Address to serve the console on. Any address other than localhost or a loopback one needs --auth-user and a password." group:"Console"`
	AuthUser         string        `name:"auth-user" env:"B2JET_CONSOLE_USER" help:"Require HTTP basic auth as this user; the password comes from B2JET_CONSOLE_PASSWORD or --auth-password-file." group:"Console"`
	AuthPassword     string        `name:"auth-password" env:"B2JET_CONSOLE_PASSWORD" help:"The basic auth password (prefer the environment variable or a file: flags show in ps)." group:"Console"`
	AuthPasswordFile string        `name:"auth-password-file" env:"B2JET_CONSOLE_PASSWORD_FILE" placeholder:"PATH" help:"File holding the basic auth password (one line)." group:"Console"`
	Refresh          time.Duration `name:"refresh" env:"B2JET_CONSOLE_REFRESH" default:"5s" help:"How often the overview reloads itself." group:"Console"`
	MaxRedrives      int           `name:"max-redrives" env:"B2JET_MAX_REDRIVES" default:"${max_redrives}" help:"Loop guard of the redrive buttons, as for dlq redrive." group:"Console"`
}

// Help is shown below the usage line.
func (c *ConsoleCmd) Help() string {
	return `Serves a web console: the overview of workers, consumers and streams; the dead letters with
their attempt history, and Redrive and Purge buttons; and replay. It acts through the same code as
'b2jet dlq', 'replay' and 'status', and needs only the ops user's NATS permissions.

  b2jet console --inbox-prefix _INBOX_ops --user ops --password "$OPS_PASS"
  B2JET_CONSOLE_PASSWORD=… b2jet console --listen 0.0.0.0:8080 --auth-user admin

Exit codes: 0 stopped by SIGINT/SIGTERM; 1 runtime failure; 2 bad usage (also: a non-loopback
--listen without auth).`
}

// consoleReadHeaderTimeout and friends bound the console's HTTP connections. The write timeout
// is longer than an action (console.DefaultActionTimeout), which runs to its end anyway.
const (
	consoleReadHeaderTimeout = 5 * time.Second
	consoleReadTimeout       = 30 * time.Second
	consoleWriteTimeout      = console.DefaultActionTimeout + 30*time.Second
	consoleIdleTimeout       = 2 * time.Minute
	consoleShutdownTimeout   = 5 * time.Second
	// consoleMaxConns caps the open connections (the rest wait in the listen backlog), so that
	// no client can exhaust the process's file descriptors.
	consoleMaxConns = 128
)

// credentials validates the console's own flags and returns the basic auth credentials ("" when
// none).
func (c *ConsoleCmd) credentials() (user, password string, err error) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return "", "", badSetting("--listen (B2JET_CONSOLE_LISTEN)", "%q is not host:port", c.Listen)
	}
	if c.Refresh < time.Second {
		return "", "", badSetting("--refresh (B2JET_CONSOLE_REFRESH)", "%v is below 1s", c.Refresh)
	}
	if c.MaxRedrives < 1 {
		return "", "", badSetting("--max-redrives (B2JET_MAX_REDRIVES)", "%d is below 1", c.MaxRedrives)
	}
	password = c.AuthPassword
	switch {
	case c.AuthPassword != "" && c.AuthPasswordFile != "":
		return "", "", badSetting("--auth-password-file (B2JET_CONSOLE_PASSWORD_FILE)", "set either it or B2JET_CONSOLE_PASSWORD, not both")
	case c.AuthPasswordFile != "":
		b, err := os.ReadFile(c.AuthPasswordFile)
		if err != nil {
			return "", "", badSetting("--auth-password-file (B2JET_CONSOLE_PASSWORD_FILE)", "cannot read: %v", unwrapOpError(err))
		}
		password = strings.TrimRight(string(b), "\r\n")
		if password == "" {
			return "", "", badSetting("--auth-password-file (B2JET_CONSOLE_PASSWORD_FILE)", "%s is empty", c.AuthPasswordFile)
		}
	}
	switch {
	case c.AuthUser == "" && (password != "" || c.AuthPasswordFile != ""):
		return "", "", badSetting("--auth-user (B2JET_CONSOLE_USER)", "missing: a console password is set but no user")
	case c.AuthUser != "" && password == "":
		return "", "", badSetting("--auth-password (B2JET_CONSOLE_PASSWORD)", "missing: --auth-user is set; give the password in B2JET_CONSOLE_PASSWORD or --auth-password-file")
	case c.AuthUser != "" && strings.Contains(c.AuthUser, ":"):
		return "", "", badSetting("--auth-user (B2JET_CONSOLE_USER)", "%q holds a ':', which basic auth cannot carry", c.AuthUser)
	case c.AuthUser == "" && !console.LoopbackAddr(c.Listen):
		return "", "", badSetting("--listen (B2JET_CONSOLE_LISTEN)",
			"%s is not a loopback address: serving the console beyond this machine needs --auth-user and a password (B2JET_CONSOLE_PASSWORD or --auth-password-file)", c.Listen)
	}
	return c.AuthUser, password, nil
}

// Run serves the console until a signal.
func (c *ConsoleCmd) Run(e *env) error {
	user, password, err := c.credentials()
	if err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	s, err := c.open("console")
	if err != nil {
		return err
	}
	defer s.close()
	cfg := s.ops.Config()
	con, err := console.New(console.Config{
		Ops: s.ops, Streams: cfg, User: user, Password: password, Refresh: c.Refresh,
		MaxRedrives: c.MaxRedrives, Version: version, Log: log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return badSetting("--listen (B2JET_CONSOLE_LISTEN)", "cannot listen on %s: %v", c.Listen, unwrapOpError(err))
	}
	ln = obs.LimitListener(ln, consoleMaxConns)
	srv := &http.Server{
		Handler:           con,
		ReadHeaderTimeout: consoleReadHeaderTimeout,
		ReadTimeout:       consoleReadTimeout,
		WriteTimeout:      consoleWriteTimeout,
		IdleTimeout:       consoleIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, stop := signalContext(e.ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("b2jet console listening", "url", "http://"+ln.Addr().String()+"/", "auth", user != "",
		"nats", redactURLs(c.Server), "dlq_stream", cfg.DLQStream)
	select {
	case err := <-done:
		return fmt.Errorf("console: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), consoleShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("console: shutdown: %w", err)
	}
	log.Info("b2jet console stopped")
	return nil
}
