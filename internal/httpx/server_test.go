package httpx

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServer runs the hardened server with the chain on a loopback port.
func startServer(t *testing.T, h HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(Chain(Wrap(h, nil), Options{}), nil, nil)
	go func() { _ = srv.Serve(GuardListener(ln, nil)) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// rawExchange sends raw bytes and returns the status line and whether the
// server closed the connection after answering.
func rawExchange(t *testing.T, addr, req string) (status string, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Status, resp.Close
}

func okHandler(w http.ResponseWriter, r *http.Request) error {
	if _, err := ReadBody(r); err != nil {
		return err
	}
	w.WriteHeader(200)
	return nil
}

func TestServerHTTPHygiene(t *testing.T) {
	t.Parallel()
	addr := startServer(t, okHandler)
	big := strings.Repeat("a", 64<<10)
	tests := []struct {
		name       string
		req        string
		wantPrefix string
		wantClose  bool
		gap        string // a known gap: skipped with this reason
	}{
		{"ok/plain", "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", "200", false, ""},
		{"ok/header-60k", "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + big[:60<<10] + "\r\n\r\n", "200", false, ""},
		{"fail/header-64k", "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + big + "\r\n\r\n", "431", true, ""},
		{"fail/content-length-and-chunked",
			"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			"400", true, ""},
		{"fail/two-content-lengths", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "400", true, ""},
		{"fail/trace", "TRACE /x HTTP/1.1\r\nHost: a\r\n\r\n", "405", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.gap != "" {
				t.Skip("known gap: " + tc.gap)
			}
			status, closed := rawExchange(t, addr, tc.req)
			if tc.wantPrefix != "" && !strings.HasPrefix(status, tc.wantPrefix) {
				t.Fatalf("status %q, want %s", status, tc.wantPrefix)
			}
			if tc.wantClose && !closed {
				t.Errorf("connection kept open after %s", status)
			}
		})
	}
}

// TestServerSlowHeaders: a client sending one header byte per second is cut
// off within the 10 s header timeout (TRANSPORT-09).
func TestServerSlowHeaders(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("takes 10 s; not run with -short")
	}
	addr := startServer(t, okHandler)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	msg := "GET /x HTTP/1.1\r\nHost: a\r\nX-Slow: " + strings.Repeat("b", 40)
	for i := 0; i < len(msg); i++ {
		if _, err := c.Write([]byte{msg[i]}); err != nil {
			break // cut off
		}
		if time.Since(start) > 15*time.Second {
			t.Fatal("still connected after 15 s")
		}
		time.Sleep(time.Second)
		// A closed connection shows as a read of EOF (or a 408 first).
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err != nil && !isTimeout(err) {
			break
		}
	}
	if d := time.Since(start); d > 12*time.Second {
		t.Fatalf("slow client kept for %v", d)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
