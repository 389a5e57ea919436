package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticRoot embed.FS

// staticFS serves /static/... from the embedded static directory.
var staticFS fs.FS = staticRoot

// pages are the page templates, each parsed with the layout.
var pages = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"visible": visible,
		"short":   shorten,
		"time":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"query":   func(v url.Values) template.URL { return template.URL(v.Encode()) },
		"join":    strings.Join,
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	// layout.html is the frame, _*.html are partials every page may use, the others are pages.
	out := map[string]*template.Template{}
	for _, n := range names {
		if n == "templates/layout.html" || strings.HasPrefix(n, "templates/_") {
			continue
		}
		t := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", n))
		out[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return out
}()

// page is what every template gets.
type page struct {
	Title   string
	Nav     string // "overview", "dead-letters" or "replay"
	CSRF    string
	Version string
	Streams struct{ Requests, DLQ string }
	// Refresh > 0 makes the page reload itself after that many seconds.
	Refresh int
	Data    any
}

// render writes the page template name with data; status 0 means 200.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, data any) {
	p := page{Title: title, Nav: nav, CSRF: c.token(r), Version: c.cfg.Version, Data: data}
	p.Streams.Requests, p.Streams.DLQ = c.cfg.Streams.RequestsStream, c.cfg.Streams.DLQStream
	if name == "overview" {
		p.Refresh = int(c.cfg.Refresh.Round(time.Second) / time.Second)
		p.Refresh = max(p.Refresh, 1)
	}
	var buf bytes.Buffer
	if err := pages[name].Execute(&buf, p); err != nil {
		c.cfg.Log.Error("console: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // a failed write means the browser went away
}

// fail renders the error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	c.render(w, r, status, "error", http.StatusText(status), "", message)
}

// failErr renders err (from package ops) on the error page: invalid options are the operator's
// mistake (400), anything else is the console's (502: NATS said no or is unreachable).
func (c *Console) failErr(w http.ResponseWriter, r *http.Request, what string, err error) {
	status := http.StatusBadGateway
	if isInvalid(err) {
		status = http.StatusBadRequest
	}
	c.fail(w, r, status, what+": "+strings.TrimPrefix(err.Error(), "ops: "))
}

// visible returns s fit to show: every rune that is not printable (controls, bidi overrides and
// other format characters, invalid UTF-8) is written as a visible escape such as \x1b or \u202e.
// html/template escapes the markup characters afterwards.
func visible(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unprintable) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r < utf8.RuneSelf && unprintable(r):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unprintable(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case unprintable(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func unprintable(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }

// visibleBlock is visible for indented text: the line breaks stay.
func visibleBlock(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = visible(l)
	}
	return strings.Join(lines, "\n")
}

// shorten puts s on one line and cuts it to at most n runes, ending with "…" when cut.
func shorten(n int, s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
