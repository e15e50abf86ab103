package httpx

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
)

// GuardListener wraps a plain-TCP listener so that an HTTP/1.x request
// whose framing is ambiguous — Content-Length together with
// Transfer-Encoding — is refused with 400 and the connection closed
// (TRANSPORT-09, RFC 9112 §6.1/§11.2), before net/http sees it (net/http
// would let Transfer-Encoding win, which is safe for us but not for a proxy
// in front that trusted Content-Length).
//
// The guard reads each request's header block, passes it on unchanged,
// then passes the body through by its framing (Content-Length bytes, or
// chunks and trailers), so it always knows where the next request starts.
// When anything is not plain HTTP/1.x it can follow (a protocol upgrade,
// HTTP/2 prior knowledge, a header block over the header limit, a framing
// value it cannot parse), it stops inspecting that connection and passes
// bytes through, leaving the verdict to net/http. It never changes a
// well-formed request.
//
// It cannot see inside TLS: use it for plain HTTP (including the hop from a
// TLS-terminating proxy).
func GuardListener(ln net.Listener, logger *slog.Logger) net.Listener {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &guardListener{Listener: ln, log: logger}
}

type guardListener struct {
	net.Listener
	log *slog.Logger
}

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: c, br: bufio.NewReaderSize(c, 4096), log: l.log}, nil
}

// refusedRequest is what the guard hands net/http instead of an ambiguous
// request: two different Content-Length values, which net/http answers
// with "400 Bad Request" and "Connection: close" through its own ordered
// response path.
const refusedRequest = "POST / HTTP/1.1\r\nHost: refused\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n"

// guardHeaderLimit stops inspection of a header block larger than the
// server accepts anyway (net/http answers 431).
const guardHeaderLimit = MaxHeaderBytes + 4096

type guardState int

const (
	gsHeader  guardState = iota // reading a request's header block
	gsBody                      // passing `remaining` body bytes
	gsChunk                     // expecting a chunk-size line
	gsData                      // passing chunk data + CRLF (`remaining`)
	gsTrailer                   // reading trailer lines up to a blank line
	gsOff                       // not inspecting any more: pass through
	gsRefused                   // handed out the refusal: EOF from now on
)

type guardConn struct {
	net.Conn
	br  *bufio.Reader
	log *slog.Logger

	mu        sync.Mutex // net/http may read from a background goroutine
	state     guardState
	remaining int64
	blk       []byte // the header block (or line) being assembled
	out       []byte // bytes ready for the caller
}

func (g *guardConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.out) == 0 {
		switch g.state {
		case gsRefused:
			return 0, io.EOF
		case gsOff:
			return g.br.Read(p)
		case gsBody, gsData:
			n := int64(len(p))
			if n > g.remaining {
				n = g.remaining
			}
			m, err := g.br.Read(p[:n])
			g.remaining -= int64(m)
			if g.remaining == 0 {
				if g.state == gsBody {
					g.state = gsHeader
				} else {
					g.state = gsChunk
				}
			}
			return m, err
		default: // gsHeader, gsChunk, gsTrailer: line-oriented
			if err := g.readLine(); err != nil {
				return 0, err
			}
		}
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	return n, nil
}

// readLine appends the next line to blk and advances the state machine;
// on an error the partial line stays in blk so a later Read resumes
// (net/http interrupts its background read with a deadline).
func (g *guardConn) readLine() error {
	start := g.lineStart()
	for {
		chunk, err := g.br.ReadSlice('\n')
		g.blk = append(g.blk, chunk...)
		if len(g.blk) > guardHeaderLimit {
			g.passThrough()
			return nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if len(g.blk) > 0 && errors.Is(err, io.EOF) {
				// A truncated request: let net/http see it and fail.
				g.passThrough()
				return nil
			}
			return err
		}
		break
	}
	line := g.blk[start:]
	switch g.state {
	case gsHeader:
		if !isBlank(line) {
			return nil // keep assembling the block
		}
		if start == 0 {
			// A blank line before any request line: pass it on.
			g.emit(gsHeader)
			return nil
		}
		g.endHeader()
	case gsChunk:
		size, ok := parseChunkSize(line)
		switch {
		case !ok:
			g.passThrough()
		case size == 0:
			g.emit(gsTrailer)
		default:
			g.emit(gsData)
			g.remaining = size + 2 // data and its CRLF
		}
	case gsTrailer:
		if isBlank(line) {
			g.emit(gsHeader)
		} else {
			g.emit(gsTrailer)
		}
	}
	return nil
}

// lineStart is where the line being read starts in blk.
func (g *guardConn) lineStart() int {
	if i := bytes.LastIndexByte(g.blk, '\n'); i >= 0 {
		return i + 1
	}
	return 0
}

func (g *guardConn) emit(next guardState) {
	g.out = append(g.out[:0], g.blk...)
	g.blk = g.blk[:0]
	g.state = next
}

func (g *guardConn) passThrough() {
	g.out = append(g.out[:0], g.blk...)
	g.blk = nil
	g.state = gsOff
}

// endHeader decides the framing of a complete header block.
func (g *guardConn) endHeader() {
	lines := bytes.Split(g.blk, []byte("\n"))
	reqLine := bytes.TrimRight(lines[0], "\r")
	var (
		cls      [][]byte
		te       [][]byte
		upgrade  bool
		weird    bool
		http10   = bytes.HasSuffix(reqLine, []byte(" HTTP/1.0"))
		connect  = bytes.HasPrefix(reqLine, []byte("CONNECT "))
		priorKnw = bytes.HasPrefix(reqLine, []byte("PRI "))
	)
	for _, l := range lines[1:] {
		l = bytes.TrimRight(l, "\r")
		if len(l) == 0 {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			weird = true // obsolete line folding: net/http decides
			continue
		}
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			weird = true
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			cls = append(cls, value)
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			te = append(te, value)
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = true
		}
	}
	switch {
	case len(cls) > 0 && len(te) > 0:
		g.log.Warn("refused a request with both Content-Length and Transfer-Encoding (ambiguous framing)",
			slog.String("remote", remoteIP(g.Conn.RemoteAddr().String())))
		g.out = append(g.out[:0], refusedRequest...)
		g.blk = nil
		g.state = gsRefused
	case weird || upgrade || connect || priorKnw:
		g.passThrough()
	case len(te) > 0:
		if len(te) == 1 && bytes.EqualFold(te[0], []byte("chunked")) && !http10 {
			g.emit(gsChunk)
		} else {
			g.passThrough() // net/http refuses other codings (501) or ignores TE on 1.0
		}
	case len(cls) > 0:
		n, ok := sameLength(cls)
		switch {
		case !ok:
			g.passThrough() // net/http answers 400
		case n == 0:
			g.emit(gsHeader)
		default:
			g.emit(gsBody)
			g.remaining = n
		}
	default:
		g.emit(gsHeader) // no body
	}
}

// sameLength parses Content-Length values that must all be equal.
func sameLength(vals [][]byte) (int64, bool) {
	var n int64 = -1
	for _, v := range vals {
		m, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || m < 0 || (n >= 0 && m != n) {
			return 0, false
		}
		n = m
	}
	return n, true
}

// parseChunkSize parses "1a;ext=x\r\n".
func parseChunkSize(line []byte) (int64, bool) {
	line = bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 || len(line) > 16 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(line), 16, 64)
	if err != nil || n < 0 || n > 1<<40 {
		return 0, false
	}
	return n, true
}

func isBlank(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}
