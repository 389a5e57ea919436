package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/cmd/internal/natsproc"
	"github.com/b2jet/b2jet/cmd/internal/procenv"
	"github.com/b2jet/b2jet/cmd/internal/workerproc"
	"github.com/b2jet/b2jet/schema"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where the browser test leaves its screenshots for a person to look at
// (bin/ at the repository root, ignored by git).
const screenshotDir = "../../bin"

// consoleProc is a running `b2jet console` and the URL it listens on.
type consoleProc struct {
	*workerproc.Proc
	url string
}

var consoleURL = regexp.MustCompile(`msg="b2jet console listening" url=(http://\S+)`)

// startConsole starts `b2jet console` on a free loopback port and waits until it listens.
func startConsole(t *testing.T, env []string, args ...string) *consoleProc {
	t.Helper()
	p := workerproc.StartTest(t, "console", binary, env, append([]string{"console", "--listen", "127.0.0.1:0"}, args...)...)
	line, err := p.WaitLine(t.Context(), "b2jet console listening", 30*time.Second)
	require.NoError(t, err)
	m := consoleURL.FindStringSubmatch(line)
	require.NotNil(t, m, "no URL in %q", line)
	return &consoleProc{Proc: p, url: m[1]}
}

// newBrowser starts headless Chromium for the test. It never skips: without Chromium the test
// fails and says how to install it.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser test needs Chromium at %s (%v): install it with `apt-get install -y chromium` (.ci/run does)", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first call starts the browser, which lives as long as its context: no timeout there.
	require.NoError(t, chromedp.Do(bctx), "starting Chromium")
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// do runs browser steps.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// text returns the text of the first element that matches the CSS selector.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err, sel)
	return s
}

// screenshot saves a full-page PNG under bin/.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is a PNG; below, a JPEG
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(screenshotDir, 0o755))
	path := filepath.Join(screenshotDir, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	abs, _ := filepath.Abs(path)
	t.Logf("screenshot: %s", abs)
	return abs
}

// A real browser against a real worker: a request that always fails is dead-lettered after its
// five attempts; the operator opens the dead letters, sees it with its attempts, and once the
// fault is gone clicks Redrive and confirms; the page says it was redriven, and the request is
// then answered ok.
func TestConsoleBrowserRedrive(t *testing.T) {
	ctx := newBrowser(t)

	fake := b2test.NewServer()
	t.Cleanup(fake.Close)
	fake.CreateBucket("photos")
	fake.AddFiles("photos", "poison/a.jpg", "poison/b.jpg", "ok/c.jpg")
	fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Prefix: "poison/"}) // every time

	// The README's authorization block: the worker as b2jet, the request from tenant acme, the
	// console as ops under its own inbox prefix.
	ns := natsproc.Start(t, readmePermissions, "")
	master := fake.MasterKey()
	accounts := filepath.Join(t.TempDir(), "accounts.yaml")
	require.NoError(t, os.WriteFile(accounts, []byte("accounts:\n  acme:\n    keyId: "+master.ID+"\n    key: "+master.Secret+
		"\n    realmUrl: "+fake.URL+"\n"), 0o600))
	env := procenv.Clean("NATS_URL="+ns.URL, "NATS_USER=b2jet", "NATS_PASSWORD=worker-pass")
	w := startWorker(t, env, "--sandbox=false", "--config", accounts, "--max-deliveries", "5", "--backoff-base", "50ms", "--backoff-max", "200ms",
		"--breaker-failures", "100", "--drain-timeout", "2s")
	w.waitLog(t, "b2jet worker ready", 30*time.Second)

	nc, err := nats.Connect(ns.URL, nats.UserInfo("acme", "acme-pass"), nats.CustomInboxPrefix("_INBOX.acme"))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	c, err := client.New(nc, client.Options{Account: "acme", InboxPrefix: "_INBOX.acme", Timeout: time.Minute})
	require.NoError(t, err)
	const requestID = "console-browser-1"
	call, err := c.Publish(t.Context(), client.Request{Op: schema.OpListFileNames,
		Body: schema.ListFileNamesRequest{BucketName: "photos", Prefix: "poison/"}, Header: nats.Header{schema.HeaderRequestID: {requestID}}})
	require.NoError(t, err)
	t.Cleanup(call.Close)

	// The error reply, and after the redrive (the dead letter keeps the Reply-To) the ok one.
	reply := func() schema.Reply[json.RawMessage] {
		t.Helper()
		m, err := call.Next(t.Context())
		require.NoError(t, err)
		var r schema.Reply[json.RawMessage]
		require.NoError(t, client.Decode(m, &r), string(m.Data))
		return r
	}
	failed := reply()
	require.False(t, failed.OK)
	assert.Equal(t, requestID, failed.ID)
	assert.Equal(t, 5, failed.Attempt, "the error reply comes with the last attempt")
	w.waitCount(t, "message dead-lettered", 1, 30*time.Second)

	con := startConsole(t, procenv.Clean("NATS_URL="+ns.URL, "NATS_USER=ops", "NATS_PASSWORD=ops-pass", "B2JET_INBOX_PREFIX=_INBOX_ops"))

	// The overview, under the ops user's permissions: the worker answers the status request.
	do(t, ctx, chromedp.Navigate(con.url), chromedp.WaitVisible(chromedp.CSS(`main`)))
	assert.NotContains(t, text(t, ctx, `main`), "No worker answered", "status under the ops permissions")
	screenshot(t, ctx, "console-overview.png")

	do(t, ctx, chromedp.Navigate(con.url+"dead-letters"), chromedp.WaitVisible(chromedp.CSS(`table.letters`)))
	assert.Equal(t, "5", text(t, ctx, `table.letters td.attempts`), "the dead letter shows its five attempts")
	assert.Equal(t, schema.CodeUnavailable, text(t, ctx, `table.letters .code`))
	screenshot(t, ctx, "console-dead-letters.png")

	do(t, ctx, chromedp.Click(chromedp.CSS(`table.letters td.num a`)), chromedp.WaitVisible(chromedp.CSS(`ol.history`)))
	historyItems, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("ol.history li").length`))
	require.NoError(t, err)
	history := text(t, ctx, `ol.history`)
	assert.Equal(t, 5, historyItems, "every attempt's history:\n%s", history)
	assert.Contains(t, history, "b2=503")
	assert.Contains(t, text(t, ctx, `table.fields`), requestID, "the request id")
	screenshot(t, ctx, "console-dead-letter.png")

	fake.ClearFaults()

	do(t, ctx,
		chromedp.Click(chromedp.CSS(`a.button[href$="/redrive"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.confirm button.primary`)),
		chromedp.Click(chromedp.CSS(`form.confirm button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`p.outcome`)),
	)
	outcome := text(t, ctx, `p.outcome`)
	assert.Equal(t, "redriven", text(t, ctx, `p.outcome .status`), outcome)
	assert.Contains(t, outcome, "b2.req.list_file_names")
	screenshot(t, ctx, "console-redriven.png")

	ok := reply()
	assert.True(t, ok.OK, "the redriven request is answered ok: %+v", ok.Error)
	assert.Equal(t, requestID, ok.ID)
	require.NotNil(t, ok.Result)
	assert.Contains(t, string(*ok.Result), "poison/a.jpg")
	assert.Contains(t, con.Output(), "console: dead letter redrive")

	do(t, ctx, chromedp.Navigate(con.url+"dead-letters"), chromedp.WaitVisible(chromedp.CSS(`main`)))
	assert.Contains(t, text(t, ctx, `main`), "No dead letters.")
	assert.NotContains(t, strings.ToLower(con.Output()), "permissions violation")
	assert.NotContains(t, strings.ToLower(w.Output()), "permissions violation")
}
