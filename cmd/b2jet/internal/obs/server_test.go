package obs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve starts an endpoint on a loopback port with lim and stops it at the end of the test.
func serve(t *testing.T, lim Limits) string {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", Handler(NewMetrics(nil), nil), lim)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		assert.NoError(t, <-done)
	})
	return srv.Addr()
}

// healthz sends one keep-alive GET /healthz on c and reads its response within d.
func healthz(c net.Conn, r *bufio.Reader, d time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return err
}

// An idle keep-alive connection is closed by the server after the idle timeout.
func TestServerClosesIdleConnections(t *testing.T) {
	t.Parallel()
	addr := serve(t, Limits{IdleTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	require.NoError(t, healthz(c, r, 10*time.Second))

	// Then nothing: the server closes the connection (a generous client-side bound only tells
	// "closed" from "kept forever").
	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err = r.ReadByte()
	require.Error(t, err)
	assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the idle connection was still open after 20s")
	assert.ErrorIs(t, err, io.EOF)
}

// A connection that sends no request is closed after the header timeout.
func TestServerClosesSilentConnections(t *testing.T) {
	t.Parallel()
	addr := serve(t, Limits{ReadHeaderTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
	assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the silent connection was still open after 20s")
}

// Connections over the cap are not served (not even accepted) until one of those held closes.
func TestServerCapsConnections(t *testing.T) {
	t.Parallel()
	const max = 2
	addr := serve(t, Limits{MaxConns: max, IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute})
	held := make([]net.Conn, max)
	for i := range held {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, healthz(c, bufio.NewReader(c), 10*time.Second), "connection %d is served", i)
		held[i] = c
	}

	over, err := net.Dial("tcp", addr) // the kernel completes the handshake into the backlog
	require.NoError(t, err)
	defer over.Close()
	overR := bufio.NewReader(over)
	err = healthz(over, overR, 500*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "a connection over the cap is not served while %d are held", max)

	require.NoError(t, held[0].Close())
	require.NoError(t, over.SetDeadline(time.Now().Add(20*time.Second)))
	resp, err := http.ReadResponse(overR, nil)
	require.NoError(t, err, "served once a held connection closed")
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestLimitListenerCloseEndsAWaitingAccept(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := LimitListener(ln, 1)
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	first, err := l.Accept()
	require.NoError(t, err)
	accepted := make(chan error, 1)
	go func() { _, err := l.Accept(); accepted <- err }()
	require.NoError(t, l.Close())
	select {
	case err := <-accepted:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(20 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
	require.NoError(t, first.Close())
	_ = first.Close()
	assert.Zero(t, len(l.(*limitListener).sem), "the slot is freed once, however often the connection is closed")
}
