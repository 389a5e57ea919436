package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embeddedHost is where the embedded server listens: loopback only, so that local publishers and
// the nats CLI can connect but nothing else on the network can.
const embeddedHost = "127.0.0.1"

// embeddedReadyTimeout bounds the embedded server's start (it recovers the JetStream store).
const embeddedReadyTimeout = 30 * time.Second

// startEmbedded starts a JetStream server persisted under dataDir/jetstream and listening on
// embeddedHost:port (port 0 picks a free port). Its own log lines go to log at debug level
// (warnings and errors at their level).
func startEmbedded(dataDir string, port int, log *slog.Logger) (*server.Server, error) {
	storeDir := filepath.Join(dataDir, "jetstream")
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// The server reports a busy port only through its logger; check first for a clear error.
		l, err := net.Listen("tcp", net.JoinHostPort(embeddedHost, strconv.Itoa(port)))
		if err != nil {
			return nil, badSetting("--embedded-port (B2JET_EMBEDDED_PORT)",
				"cannot listen on %s:%d (another b2jet worker or nats-server running?): %v; pick another port or set NATS_URL",
				embeddedHost, port, unwrapOpError(err))
		}
		_ = l.Close()
	}
	opts := &server.Options{
		ServerName: "b2jet-embedded",
		Host:       embeddedHost,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	sl := &serverLog{log: log.With("component", "nats-server")}
	s.SetLoggerV2(sl, false, false, false)
	go s.Start()
	if !s.ReadyForConnections(embeddedReadyTimeout) {
		s.Shutdown()
		if fatal := sl.fatal(); fatal != "" {
			return nil, fmt.Errorf("embedded NATS server: %s", fatal)
		}
		return nil, fmt.Errorf("embedded NATS server not ready within %s", embeddedReadyTimeout)
	}
	return s, nil
}

// ensureDataDir creates the data directory of the embedded server.
func ensureDataDir(dataDir string) error {
	if dataDir == "" {
		return badSetting("--data-dir (B2JET_DATA_DIR)", "must not be empty when the embedded NATS server is used")
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "jetstream"), 0o750); err != nil {
		return badSetting("--data-dir (B2JET_DATA_DIR)", "cannot create %s: %v", dataDir, unwrapOpError(err))
	}
	return nil
}

// unwrapOpError drops the "op path:" decoration of *os.PathError and *net.OpError, whose text the
// callers already show.
func unwrapOpError(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok {
		return oe.Err
	}
	return err
}

// serverLog adapts slog to nats-server's Logger. The server's notices are verbose, so they go to
// debug; its warnings and errors keep their level. Fatal errors (such as a busy port) are
// remembered for the start-up error.
type serverLog struct {
	log *slog.Logger

	mu        sync.Mutex
	lastFatal string
}

func (l *serverLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Tracef(format string, v ...any)  {}

func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.mu.Lock()
	l.lastFatal = msg
	l.mu.Unlock()
}

func (l *serverLog) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastFatal
}
