package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// HTTPPoster posts JSON bodies to one URL over kept-alive HTTP/1.1 connections, one request
// at a time on each. It is the load generator's client: it shares the process (and its CPU
// time) with the server it measures, so it does what a request needs and nothing more — one
// write per request, one buffered reader per connection, no per-request goroutines or
// allocations. It reads answers with a Content-Length or chunked, and closes a connection
// the server asked to close ("Connection: close") or that failed. A failed request is not
// retried.
type HTTPPoster struct {
	addr    string
	head    []byte // request line and headers, up to the value of Content-Length
	idle    chan *postConn
	timeout time.Duration
}

// maxAnswerBytes bounds an answer body the poster will read.
const maxAnswerBytes = 16 << 20

// NewHTTPPoster returns a poster for rawURL ("http://host:port/path"), sending apiKey (if not
// empty) as a bearer token, keeping up to maxIdle connections open between requests, and
// failing a request that takes longer than timeout (0: 30 s).
func NewHTTPPoster(rawURL, apiKey string, maxIdle int, timeout time.Duration) (*HTTPPoster, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("bench: %q is not an http:// URL", rawURL)
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	head := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n", u.RequestURI(), u.Host)
	if apiKey != "" {
		head = fmt.Appendf(head, "Authorization: Bearer %s\r\n", apiKey)
	}
	head = append(head, "Content-Length: "...)
	return &HTTPPoster{addr: addr, head: head, idle: make(chan *postConn, max(maxIdle, 1)), timeout: timeout}, nil
}

// Post sends the concatenation of parts as the request body and calls answer with the
// status and body of the response; body is only valid during the call. Post returns
// answer's error, or the error that kept it from calling answer.
func (p *HTTPPoster) Post(ctx context.Context, answer func(status int, body []byte) error, parts ...[]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := p.conn(ctx)
	if err != nil {
		return err
	}
	status, body, keep, err := c.roundTrip(p.head, p.timeout, parts)
	if err != nil {
		c.nc.Close()
		return err
	}
	err = answer(status, body)
	if !keep {
		c.nc.Close()
		return err
	}
	select {
	case p.idle <- c:
	default:
		c.nc.Close()
	}
	return err
}

// Close closes the idle connections.
func (p *HTTPPoster) Close() {
	for {
		select {
		case c := <-p.idle:
			c.nc.Close()
		default:
			return
		}
	}
}

func (p *HTTPPoster) conn(ctx context.Context) (*postConn, error) {
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	return &postConn{nc: nc, br: bufio.NewReaderSize(nc, 8<<10)}, nil
}

// postConn is one connection with its buffers, reused from request to request.
type postConn struct {
	nc   net.Conn
	br   *bufio.Reader
	req  []byte
	body []byte
}

var errBadAnswer = errors.New("bench: malformed HTTP answer")

// roundTrip writes one request and reads its answer; keep reports whether the connection
// may carry another request.
func (c *postConn) roundTrip(head []byte, timeout time.Duration, parts [][]byte) (status int, body []byte, keep bool, err error) {
	n := 0
	for _, b := range parts {
		n += len(b)
	}
	c.req = strconv.AppendInt(append(c.req[:0], head...), int64(n), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	for _, b := range parts {
		c.req = append(c.req, b...)
	}
	if err := c.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, nil, false, err
	}
	if _, err := c.nc.Write(c.req); err != nil {
		return 0, nil, false, err
	}
	return c.readAnswer()
}

// readAnswer reads a response: the status line, the headers it needs (Content-Length,
// Transfer-Encoding, Connection) and the body.
func (c *postConn) readAnswer() (status int, body []byte, keep bool, err error) {
	line, err := c.line()
	if err != nil {
		return 0, nil, false, err
	}
	// HTTP/1.x SSS reason
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, nil, false, errBadAnswer
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil || status < 200 {
		// 1xx answers only come to requests that ask for them (Expect), which these do not.
		return 0, nil, false, errBadAnswer
	}
	keep = line[7] == '1'
	length, chunked := -1, false
	for {
		line, err = c.line()
		if err != nil {
			return 0, nil, false, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, nil, false, errBadAnswer
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.Atoi(string(value))
			if err != nil || length < 0 || length > maxAnswerBytes {
				return 0, nil, false, errBadAnswer
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = hasToken(value, "chunked")
		case bytes.EqualFold(name, []byte("Connection")):
			if hasToken(value, "close") {
				keep = false
			}
		}
	}
	c.body = c.body[:0]
	switch {
	case status == 204 || status == 304:
	case chunked:
		err = c.readChunked()
	case length >= 0:
		c.body = grow(c.body, length)
		_, err = io.ReadFull(c.br, c.body)
	default:
		// No length: the body runs to the end of the connection.
		keep = false
		var b bytes.Buffer
		_, err = b.ReadFrom(io.LimitReader(c.br, maxAnswerBytes+1))
		if b.Len() > maxAnswerBytes {
			err = errBadAnswer
		}
		c.body = append(c.body, b.Bytes()...)
	}
	if err != nil {
		return 0, nil, false, err
	}
	return status, c.body, keep, nil
}

// readChunked reads a chunked body into c.body, and the trailers after it.
func (c *postConn) readChunked() error {
	for {
		line, err := c.line()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		size, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 32)
		if err != nil || len(c.body)+int(size) > maxAnswerBytes {
			return errBadAnswer
		}
		if size == 0 {
			for {
				if line, err = c.line(); err != nil || len(line) == 0 {
					return err
				}
			}
		}
		start := len(c.body)
		c.body = grow(c.body, start+int(size))
		if _, err := io.ReadFull(c.br, c.body[start:]); err != nil {
			return err
		}
		if line, err = c.line(); err != nil || len(line) != 0 {
			return errors.Join(err, errBadAnswer)
		}
	}
}

// line reads a line without its CRLF (or LF).
func (c *postConn) line() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// grow returns b resized to n bytes, keeping its contents.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		nb := make([]byte, n, max(n, 2*cap(b)))
		copy(nb, b)
		return nb
	}
	return b[:n]
}

// hasToken reports whether the comma-separated header value holds token (case-insensitive).
func hasToken(value []byte, token string) bool {
	for part := range bytes.SplitSeq(value, []byte(",")) {
		if bytes.EqualFold(bytes.TrimSpace(part), []byte(token)) {
			return true
		}
	}
	return false
}
