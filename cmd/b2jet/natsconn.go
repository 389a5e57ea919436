package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSAuth are the connection options of the nats CLI, with the same flag and environment
// names (NATS_CREDS, NATS_NKEY, NATS_CERT, ...).
type NATSAuth struct {
	User     string `name:"user" env:"NATS_USER" help:"NATS user name, or a token when no password is given." group:"NATS connection"`
	Password string `name:"password" env:"NATS_PASSWORD" help:"NATS password." group:"NATS connection"`
	Creds    string `name:"creds" env:"NATS_CREDS" help:"NATS user credentials file (JWT and seed)." group:"NATS connection"`
	Nkey     string `name:"nkey" env:"NATS_NKEY" help:"NATS user NKey seed file." group:"NATS connection"`
	TLSCert  string `name:"tlscert" env:"NATS_CERT" help:"TLS client certificate file (PEM)." group:"NATS connection"`
	TLSKey   string `name:"tlskey" env:"NATS_KEY" help:"TLS client private key file (PEM)." group:"NATS connection"`
	TLSCA    string `name:"tlsca" env:"NATS_CA" help:"TLS certificate authority file (PEM) to verify the server." group:"NATS connection"`
	TLSFirst bool   `name:"tlsfirst" env:"NATS_TLSFIRST" help:"Do the TLS handshake before the NATS protocol starts (server must enable handshake_first)." group:"NATS connection"`
}

// validateServers checks a comma-separated NATS URL list. setting names it in errors.
func validateServers(list, setting string) error {
	urls := splitURLs(list)
	if len(urls) == 0 {
		return badSetting(setting, "no server URL given")
	}
	for _, raw := range urls {
		shown := redactURLs(raw)
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil {
			return badSetting(setting, "%q is not a URL", shown)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return badSetting(setting, "%q has scheme %q; want nats://, tls://, ws:// or wss://", shown, u.Scheme)
		}
		if u.Hostname() == "" {
			return badSetting(setting, "%q has no host", shown)
		}
		if p := u.Port(); p != "" {
			if _, err := net.LookupPort("tcp", p); err != nil {
				return badSetting(setting, "%q has a bad port %q", shown, p)
			}
		}
	}
	return nil
}

// validate checks that every file named exists and is readable, and that the options fit together.
func (a NATSAuth) validate() error {
	files := []struct{ setting, path string }{
		{"--creds (NATS_CREDS)", a.Creds},
		{"--nkey (NATS_NKEY)", a.Nkey},
		{"--tlscert (NATS_CERT)", a.TLSCert},
		{"--tlskey (NATS_KEY)", a.TLSKey},
		{"--tlsca (NATS_CA)", a.TLSCA},
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if err := readable(f.path); err != nil {
			return badSetting(f.setting, "%v", err)
		}
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		if a.TLSCert == "" {
			return badSetting("--tlscert (NATS_CERT)", "missing: --tlskey (NATS_KEY) is set, the certificate must be given too")
		}
		return badSetting("--tlskey (NATS_KEY)", "missing: --tlscert (NATS_CERT) is set, the private key must be given too")
	}
	if a.Creds != "" && a.Nkey != "" {
		return badSetting("--nkey (NATS_NKEY)", "cannot be combined with --creds (NATS_CREDS); use one")
	}
	if a.Password != "" && a.User == "" {
		return badSetting("--user (NATS_USER)", "missing: --password (NATS_PASSWORD) is set without a user")
	}
	return nil
}

// readable reports why path cannot be read as a regular file, or nil.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if pe, ok := errors.AsType[*os.PathError](err); ok {
			err = pe.Err
		}
		return fmt.Errorf("cannot read %s: %v", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("cannot read %s: is a directory", path)
	}
	buf := make([]byte, 1)
	if _, err := f.Read(buf); err != nil && st.Size() > 0 {
		return fmt.Errorf("cannot read %s: %v", path, err)
	}
	return nil
}

// options returns the nats.go options for the authentication and TLS settings. Call validate
// first.
func (a NATSAuth) options() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case a.User != "" && a.Password != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.User != "":
		opts = append(opts, nats.Token(a.User))
	}
	if a.Creds != "" {
		opts = append(opts, nats.UserCredentials(a.Creds))
	}
	if a.Nkey != "" {
		o, err := nats.NkeyOptionFromSeed(a.Nkey)
		if err != nil {
			return nil, badSetting("--nkey (NATS_NKEY)", "%v", err)
		}
		opts = append(opts, o)
	}
	if a.TLSCert != "" {
		opts = append(opts, nats.ClientCert(a.TLSCert, a.TLSKey))
	}
	if a.TLSCA != "" {
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	if a.TLSFirst {
		opts = append(opts, nats.TLSHandshakeFirst())
	}
	return opts, nil
}

// connState reports the worker connection's first successful connect and its latest
// connection error, so that start-up can wait for NATS with a clear message.
type connState struct {
	connected chan struct{}
	once      sync.Once
	mu        sync.Mutex
	lastErr   error
}

func newConnState() *connState { return &connState{connected: make(chan struct{})} }

func (st *connState) markConnected() { st.once.Do(func() { close(st.connected) }) }

func (st *connState) setErr(err error) {
	st.mu.Lock()
	st.lastErr = err
	st.mu.Unlock()
}

func (st *connState) err() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.lastErr
}

// workerConnOptions are the options of the worker's long-lived connection: reconnect forever,
// retry a failed first connect, and log disconnects and reconnects; asynchronous errors go to
// asyncErr (counted, logged with a rate limit).
func workerConnOptions(log *slog.Logger, st *connState, asyncErr *asyncErrors) []nats.Option {
	host, _ := os.Hostname()
	return []nats.Option{
		nats.Name("b2jet worker " + host),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connected", "server", redactURLs(nc.ConnectedUrl()), "server_name", nc.ConnectedServerName())
			st.markConnected()
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "error", err)
				st.setErr(err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS reconnected", "server", redactURLs(nc.ConnectedUrl()), "server_name", nc.ConnectedServerName())
			st.markConnected()
		}),
		nats.ReconnectErrHandler(func(nc *nats.Conn, err error) {
			st.setErr(err)
		}),
		nats.ErrorHandler(asyncErr.handle),
		nats.ClosedHandler(func(nc *nats.Conn) {
			log.Debug("NATS connection closed")
		}),
	}
}
