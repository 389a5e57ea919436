package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
)

// csrfField is the name of the hidden form field that carries the CSRF token.
const csrfField = "csrf"

// maxFormBytes bounds a form body; the console's forms are a few fields.
const maxFormBytes = 64 << 10

// contentSecurityPolicy allows the console's own stylesheet and nothing else: no scripts at all,
// no plugins, no framing, forms only to the console.
const contentSecurityPolicy = "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// secure wraps next with, in this order: the security headers, the loopback Host check (without
// auth), basic auth (with it), the browsers' cross-origin check (Sec-Fetch-Site, Origin), and the
// CSRF token of every POST.
func (c *Console) secure(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusForbidden, "Cross-origin request refused: the console accepts forms only from its own pages.")
	}))
	checked := cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				c.fail(w, r, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if !c.validToken(r, r.PostForm.Get(csrfField)) {
				c.fail(w, r, http.StatusForbidden, "Missing or stale CSRF token: reload the page and try again.")
				return
			}
		}
		next.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store") // pages hold dead letters
		}
		if c.cfg.LoopbackOnly && c.cfg.User == "" && !loopbackHost(r.Host) {
			c.fail(w, r, http.StatusMisdirectedRequest,
				"This console serves only http://localhost or a loopback address (it runs without --auth-user).")
			return
		}
		if c.cfg.User != "" && !c.authorized(r) {
			h.Set("WWW-Authenticate", `Basic realm="b2jet console", charset="UTF-8"`)
			c.fail(w, r, http.StatusUnauthorized, "Authentication required.")
			return
		}
		checked.ServeHTTP(w, r)
	})
}

// authorized checks r's basic auth credentials in constant time (hashing first, so that the
// lengths do not leak either).
func (c *Console) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	uh, ph := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	wu, wp := sha256.Sum256([]byte(c.cfg.User)), sha256.Sum256([]byte(c.cfg.Password))
	// Both comparisons always run.
	return subtle.ConstantTimeCompare(uh[:], wu[:])&subtle.ConstantTimeCompare(ph[:], wp[:]) == 1
}

// token is the CSRF token of r's operator: an HMAC of the user under the process's secret.
func (c *Console) token(r *http.Request) string {
	user, _, _ := r.BasicAuth()
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("b2jet-console-csrf\x00" + user))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validToken compares got with r's token in constant time.
func (c *Console) validToken(r *http.Request, got string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(c.token(r)))
}

// loopbackHost reports whether a Host header names this machine: localhost (or a name under
// .localhost) or a loopback address, with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoopbackAddr reports whether a listen address ("host:port") accepts connections only from this
// machine: its host is localhost or a loopback address. An empty host (all interfaces) is not.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
