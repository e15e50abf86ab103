package httpx

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func echoHandler(w http.ResponseWriter, r *http.Request) error {
	b, err := ReadBody(r)
	if err != nil {
		return err
	}
	if d := r.URL.Query().Get("sleep"); d != "" {
		dur, _ := time.ParseDuration(d)
		time.Sleep(dur)
	}
	fmt.Fprintf(w, "%s %s %d:%s|%s", r.Method, r.URL.Path, len(b), b, r.Trailer.Get("X-T"))
	return nil
}

// exchange writes raw (in pieces of size step, 0 = at once) and reads want
// responses, returning "status body" for each and whether the server
// closed the connection afterwards.
func exchange(t *testing.T, addr, raw string, step, want int) ([]string, bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	go func() {
		if step <= 0 {
			_, _ = io.WriteString(c, raw)
			return
		}
		for i := 0; i < len(raw); i += step {
			_, _ = io.WriteString(c, raw[i:min(i+step, len(raw))])
			time.Sleep(time.Millisecond)
		}
	}()
	br := bufio.NewReader(c)
	var out []string
	closed := false
	for range want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("after %v: read response: %v", out, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, fmt.Sprintf("%d %s", resp.StatusCode, b))
		closed = resp.Close
	}
	if !closed {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := br.ReadByte(); err == io.EOF {
			closed = true
		}
	}
	return out, closed
}

func TestGuardFraming(t *testing.T) {
	t.Parallel()
	addr := startServer(t, echoHandler)
	big := strings.Repeat("x", 300<<10)
	post := func(path, body string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	}
	chunked := "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: tv\r\n\r\n"
	get := "GET /g HTTP/1.1\r\nHost: a\r\n\r\n"
	trick := "a\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct {
		name      string
		raw       string
		step      int
		want      []string
		wantClose bool
	}{
		{"ok/pipelined-mixed", post("/p", "abc") + chunked + get, 0,
			[]string{"200 POST /p 3:abc|", "200 POST /c 11:hello world|tv", "200 GET /g 0:|"}, false},
		{"ok/pipelined-byte-by-byte-body-looks-like-headers", post("/p", trick) + chunked + get, 1,
			[]string{fmt.Sprintf("200 POST /p %d:%s|", len(trick), trick), "200 POST /c 11:hello world|tv", "200 GET /g 0:|"}, false},
		{"ok/big-body-then-get", post("/big", big) + get, 0,
			[]string{fmt.Sprintf("200 POST /big %d:%s|", len(big), big), "200 GET /g 0:|"}, false},
		{"ok/slow-handler-then-pipelined", post("/s?sleep=300ms", "z") + get, 0,
			[]string{"200 POST /s 1:z|", "200 GET /g 0:|"}, false},
		{"ok/zero-length-and-leading-crlf", post("/z", "") + get, 0,
			[]string{"200 POST /z 0:|", "200 GET /g 0:|"}, false},
		{"fail/cl-and-te", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 0,
			[]string{"400 400 Bad Request"}, true},
		{"fail/te-and-cl-lower-case", "POST /x HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n", 0,
			[]string{"400 400 Bad Request"}, true},
		{"fail/cl-and-te-http10", "POST /x HTTP/1.0\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello", 0,
			[]string{"400 400 Bad Request"}, true},
		{"fail/smuggled-second-request", post("/p", "abc") + "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get, 0,
			[]string{"200 POST /p 3:abc|", "400 400 Bad Request"}, true},
		{"fail/cl-and-te-byte-by-byte", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 1,
			[]string{"400 400 Bad Request"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, closed := exchange(t, addr, tc.raw, tc.step, len(tc.want))
			for i := range tc.want {
				if got[i] != tc.want[i] {
					g, w := got[i], tc.want[i]
					if len(g) > 80 {
						g = g[:80] + "…"
					}
					if len(w) > 80 {
						w = w[:80] + "…"
					}
					t.Errorf("response %d = %q, want %q", i, g, w)
				}
			}
			if closed != tc.wantClose {
				t.Errorf("closed = %v, want %v", closed, tc.wantClose)
			}
		})
	}
}

func TestParseChunkSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{"ok/hex", "1a\r\n", 26, true},
		{"ok/ext", "FF;name=val\r\n", 255, true},
		{"ok/zero", "0\r\n", 0, true},
		{"fail/empty", "\r\n", 0, false},
		{"fail/not-hex", "zz\r\n", 0, false},
		{"fail/huge", "fffffffffffffffff\r\n", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := parseChunkSize([]byte(tc.in))
			if n != tc.want || ok != tc.ok {
				t.Errorf("parseChunkSize(%q) = %d, %v", tc.in, n, ok)
			}
		})
	}
}

// FuzzGuardPassThrough: whatever bytes arrive, the guard either passes
// them on unchanged or refuses a request whose header block has both
// framing headers; it never panics or invents bytes.
func FuzzGuardPassThrough(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 3)
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 1)
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /x HTTP/1.1\r\n\r\n"), 7)
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		if step <= 0 || step > 64 {
			step = 5
		}
		g := &guardConn{Conn: fakeAddrConn{}, br: bufio.NewReaderSize(bytes.NewReader(in), 16), log: slog.New(slog.DiscardHandler)}
		var out []byte
		buf := make([]byte, step)
		for range 100000 {
			n, err := g.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
		}
		if g.state == gsRefused {
			return
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("guard changed the stream:\n in %q\nout %q", in, out)
		}
	})
}

// fakeAddrConn is only asked for its remote address.
type fakeAddrConn struct{ net.Conn }

func (fakeAddrConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
