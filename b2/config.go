package b2

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// DefaultRealmURL is Backblaze's authorize endpoint host.
const DefaultRealmURL = "https://api.backblazeb2.com"

// Defaults of Config. Each applies when the field is zero.
const (
	DefaultCallTimeout         = 30 * time.Second
	DefaultConnectTimeout      = 10 * time.Second
	DefaultMaxResponseBytes    = 64 << 20
	DefaultSessionLifetime     = 24 * time.Hour
	DefaultRefreshMargin       = time.Hour
	DefaultAuthFailureCooldown = 2 * time.Second
	DefaultSharedSessionWait   = 15 * time.Second
	DefaultUserAgent           = "b2jet/dev"
)

// Config configures a Client: one B2 application key (an "account profile"). The zero value of
// every field except KeyID and Key selects the documented default.
type Config struct {
	// KeyID and Key are the application key's id and secret. Required.
	KeyID string
	Key   Secret

	// RealmURL is where b2_authorize_account is sent. Default DefaultRealmURL; point it at a
	// b2test.Server or another B2-compatible server.
	RealmURL string

	// HTTPClient sends every request. Default: a client whose transport dials with
	// ConnectTimeout, keeps up to 256 idle connections per host for high concurrency, and
	// has no overall timeout of its own (CallTimeout bounds each call).
	HTTPClient *http.Client

	// UserAgent is sent on every call. Default DefaultUserAgent; the b2jet binary sets
	// "b2jet/<version>".
	UserAgent string

	// CallTimeout bounds one HTTP call, body included (default 30 s).
	CallTimeout time.Duration
	// ConnectTimeout bounds dialing when HTTPClient is nil (default 10 s).
	ConnectTimeout time.Duration
	// MaxResponseBytes bounds a successful response body (default 64 MiB; a 10,000-name
	// page with metadata is a few MiB).
	MaxResponseBytes int64

	// SessionLifetime is how long B2 honours a token (24 h). RefreshMargin is how long before
	// that the cached session is replaced (default 1 h, so a session is used for at most 23 h).
	SessionLifetime time.Duration
	RefreshMargin   time.Duration
	// AuthFailureCooldown: after b2_authorize_account fails, callers within this period get the
	// same error without another B2 call (default 2 s).
	AuthFailureCooldown time.Duration

	// Sessions, if set, shares the session with the other processes serving this key (see
	// SessionStore): the Client looks there before it authorizes, authorizes only while it
	// holds the store's lease, stores the new session sealed, and removes a session B2 rejected
	// (only if no one has replaced it since). Nil: the session is the process's own.
	Sessions SessionStore
	// SharedSessionWait bounds how long a refresh waits for another process's lease on
	// Sessions when it has no valid session to go on with; then it authorizes on its own
	// (default 15 s, longer than the store's lease time).
	SharedSessionWait time.Duration

	// RequestsPerSecond, when positive, limits this account's B2 calls (token bucket with
	// Burst, default burst 1). Zero means no limit.
	RequestsPerSecond float64
	Burst             int

	// SharedPause, RateShare and Transactions, if set, share the account's Retry-After pause,
	// its RequestsPerSecond and its transaction counts and daily budget with the other
	// processes calling B2 for it (see fleethooks.go). Nil: this process's own.
	SharedPause  SharedPause
	RateShare    RateShare
	Transactions TransactionBook

	// Now is the clock (default time.Now). Test seam.
	Now func() time.Time

	// OnEvent, if set, observes B2 calls, session cache hits and misses, refreshes and
	// Retry-After pauses (see Event). It must be fast and safe for concurrent use.
	OnEvent func(Event)

	// TracerProvider, if set, traces every HTTP call to B2 with an OpenTelemetry client span,
	// the child of the span in the call's context, named after the B2 operation
	// (b2_list_file_names) with the account (Name), the bucket and the HTTP status. Nil: no spans.
	// Either way, a call that waits for the account's Retry-After pause or rate budget adds an
	// event to the span in its context, if that span is recording.
	TracerProvider trace.TracerProvider
	// Name is the account's name in the caller's configuration, recorded on spans as b2.account
	// (optional).
	Name string
}

func (c Config) withDefaults() (Config, error) {
	if c.KeyID == "" || c.Key == "" {
		return c, errors.New("b2: application key id and key are both required")
	}
	if c.RealmURL == "" {
		c.RealmURL = DefaultRealmURL
	}
	u, err := url.Parse(c.RealmURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("b2: realm URL %q is not an http(s) URL", c.RealmURL)
	}
	setDefault(&c.CallTimeout, DefaultCallTimeout)
	setDefault(&c.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&c.MaxResponseBytes, DefaultMaxResponseBytes)
	setDefault(&c.SessionLifetime, DefaultSessionLifetime)
	setDefault(&c.RefreshMargin, DefaultRefreshMargin)
	setDefault(&c.AuthFailureCooldown, DefaultAuthFailureCooldown)
	setDefault(&c.SharedSessionWait, DefaultSharedSessionWait)
	if c.RefreshMargin >= c.SessionLifetime {
		return c, fmt.Errorf("b2: refresh margin %s must be shorter than the session lifetime %s", c.RefreshMargin, c.SessionLifetime)
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.Burst <= 0 {
		c.Burst = 1
	}
	if c.RequestsPerSecond < 0 {
		return c, fmt.Errorf("b2: requests per second must not be negative, got %g", c.RequestsPerSecond)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = newHTTPClient(c.ConnectTimeout, c.CallTimeout)
	}
	return c, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func newHTTPClient(connectTimeout, callTimeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connectTimeout,
		ResponseHeaderTimeout: callTimeout,
		ExpectContinueTimeout: time.Second,
	}}
}
