package main

import (
	"io"
	"log/slog"
	"net/url"
	"strings"
)

// LogFlags select the worker's log level and format.
type LogFlags struct {
	LogLevel  string `name:"log-level" env:"B2JET_LOG_LEVEL" enum:"debug,info,warn,error" default:"info" help:"Log level: debug, info, warn or error." group:"Logging"`
	LogFormat string `name:"log-format" env:"B2JET_LOG_FORMAT" enum:"text,json" default:"text" help:"Log format: text (logfmt) or json." group:"Logging"`
}

// newLogger returns the slog logger the flags describe, writing to w. Values of type b2.Secret
// redact themselves (slog.LogValuer), so keys and tokens never reach the output.
func (f LogFlags) newLogger(w io.Writer) *slog.Logger {
	var level slog.Level
	switch f.LogLevel {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if f.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redactURLs returns a comma-separated NATS URL list with any user information (a user and
// password, or a token) replaced by "REDACTED", for logs and error messages.
func redactURLs(list string) string {
	parts := splitURLs(list)
	for i, p := range parts {
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = url.User("REDACTED")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// splitURLs splits a comma-separated URL list, dropping empty entries.
func splitURLs(list string) []string {
	var out []string
	for p := range strings.SplitSeq(list, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
