package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestHTTPPoster checks the load generator's client against net/http's server: the request
// it sends (headers and body), answers with a length, in chunks, without a body, with an
// error status and with "Connection: close", and that it keeps a connection for the next
// request unless told not to.
func TestHTTPPoster(t *testing.T) {
	var conns atomic.Int64
	big := strings.Repeat("0123456789", 900) // past net/http's buffers: chunked, in pieces
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.Path != "/v1/x" || r.Header.Get("Authorization") != "Bearer k1" ||
			r.Header.Get("Content-Type") != "application/json" || r.ContentLength != int64(len(body)) {
			http.Error(w, "bad request "+r.Method+" "+r.URL.Path, 400)
			return
		}
		switch string(body) {
		case `{"a":1}`:
			w.Write([]byte(`{"ok":true}`))
		case `{"chunked":1}`:
			w.Write([]byte(big[:5000]))
			w.(http.Flusher).Flush()
			w.Write([]byte(big[5000:]))
		case `{"empty":1}`:
			w.WriteHeader(204)
		case `{"close":1}`:
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		default:
			http.Error(w, "unknown body "+string(body), 422)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p, err := NewHTTPPoster(srv.URL+"/v1/x", "k1", 4, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	post := func(parts ...string) (int, string) {
		t.Helper()
		var status int
		var got string
		bs := make([][]byte, len(parts))
		for i, s := range parts {
			bs[i] = []byte(s)
		}
		err := p.Post(ctx, func(s int, b []byte) error {
			status, got = s, string(b)
			return nil
		}, bs...)
		if err != nil {
			t.Fatalf("post %v: %v", parts, err)
		}
		return status, got
	}
	for range 3 {
		if s, b := post(`{"a"`, `:1}`); s != 200 || b != `{"ok":true}` {
			t.Fatalf("plain: %d %q", s, b)
		}
		if s, b := post(`{"chunked":1}`); s != 200 || b != big {
			t.Fatalf("chunked: %d, %d bytes", s, len(b))
		}
		if s, b := post(`{"empty":1}`); s != 204 || b != "" {
			t.Fatalf("empty: %d %q", s, b)
		}
		if s, b := post(`{"nope":1}`); s != 422 || !strings.Contains(b, "unknown body") {
			t.Fatalf("error: %d %q", s, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for sequential requests, want 1 kept alive", n)
	}
	if s, b := post(`{"close":1}`); s != 200 || b != "bye" {
		t.Fatalf("close: %d %q", s, b)
	}
	if s, _ := post(`{"a":1}`); s != 200 {
		t.Fatalf("after close: %d", s)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want a new one after Connection: close", n)
	}
	if err := p.Post(ctx, func(int, []byte) error { return io.ErrShortBuffer }, []byte(`{"a":1}`)); err != io.ErrShortBuffer {
		t.Fatalf("answer's error: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Post(cctx, func(int, []byte) error { return nil }, []byte(`{"a":1}`)); err != context.Canceled {
		t.Fatalf("canceled: %v", err)
	}
}

// TestHTTPPosterBrokenAnswers checks that malformed answers are errors, not decisions.
func TestHTTPPosterBrokenAnswers(t *testing.T) {
	for _, answer := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"garbage\r\n\r\n",
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			c.Read(buf)
			c.Write([]byte(answer))
			c.Close()
		}()
		p, err := NewHTTPPoster("http://"+ln.Addr().String()+"/", "", 1, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		called := false
		err = p.Post(context.Background(), func(int, []byte) error { called = true; return nil }, []byte("{}"))
		if err == nil || called {
			t.Errorf("%q: err %v, answer called %v", answer, err, called)
		}
		ln.Close()
	}
}

// TestDecisionOf checks reading the decision of an answer, fast and slow.
func TestDecisionOf(t *testing.T) {
	for body, want := range map[string]string{
		`{"decision":"accept","score":0}`:     "accept",
		`{"decision":"reject","score":700}`:   "reject",
		`{"score":1, "decision": "review"}`:   "review",
		`{"decision":"something-else","x":1}`: "something-else",
	} {
		if got, err := decisionOf([]byte(body)); err != nil || got != want {
			t.Errorf("%s: %q %v", body, got, err)
		}
	}
	if _, err := decisionOf([]byte(`not json`)); err == nil {
		t.Error("not json: no error")
	}
}
