package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// dialTimeout bounds every handshake a client makes. It is generous: on a
// shared 2-core machine with fuzzers running, a handshake was seen to
// wait over 10 s for CPU, and a timeout then fails the benchmark.
const dialTimeout = 30 * time.Second

// Dialer returns a gorilla Dialer that only ever connects to addr (a
// loopback listener), whatever the URL says, and closes its sockets with
// SO_LINGER 0 so that tens of thousands of short-lived handshakes leave
// no TIME_WAIT entries behind to exhaust the ephemeral ports.
func Dialer(addr string) *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: dialTimeout,
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			return c, nil
		},
	}
}

// Target is where a client connects: a Server here, or a server in a
// child process.
type Target struct {
	Kind Kind
	Addr string // 127.0.0.1:port
	URL  string // ws://127.0.0.1:port/ws
}

// Client is one open client socket that sends Request and reads the
// answer. It is not safe for concurrent use.
type Client struct {
	ws  *websocket.Conn
	buf []byte
}

// Dial opens a client socket to s with header.
func Dial(ctx context.Context, s Target, header http.Header) (*Client, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	ws, resp, err := Dialer(s.Addr).DialContext(ctx, s.URL, header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("bench: dial %s: %w (HTTP %d %s)", s.Kind, err, resp.StatusCode, readBody(resp))
		}
		return nil, fmt.Errorf("bench: dial %s: %w", s.Kind, err)
	}
	return &Client{ws: ws, buf: make([]byte, len(Request)+1)}, nil
}

// RoundTrip sends Request and checks that exactly Request comes back.
func (c *Client) RoundTrip() error {
	if err := c.ws.WriteMessage(websocket.TextMessage, Request); err != nil {
		return err
	}
	mt, r, err := c.ws.NextReader()
	if err != nil {
		return err
	}
	n, err := io.ReadFull(r, c.buf)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
	case err != nil:
		return err
	default:
		return errors.New("bench: answer longer than the request")
	}
	if mt != websocket.TextMessage || !bytes.Equal(c.buf[:n], Request) {
		return fmt.Errorf("bench: unexpected answer %q", c.buf[:n])
	}
	return nil
}

// Close closes the socket (abruptly: SO_LINGER 0).
func (c *Client) Close() error { return c.ws.Close() }

// Handshake opens a socket to s and closes it at once; it fails unless the
// server upgraded.
func Handshake(ctx context.Context, d *websocket.Dialer, s Target, header http.Header) error {
	ws, resp, err := d.DialContext(ctx, s.URL, header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return fmt.Errorf("bench: handshake with %s: %w (HTTP %d %s)", s.Kind, err, resp.StatusCode, readBody(resp))
		}
		return fmt.Errorf("bench: handshake with %s: %w", s.Kind, err)
	}
	return ws.Close()
}

// Refused makes a handshake to s that must be refused with status: it
// fails if the server upgraded or answered anything else.
func Refused(ctx context.Context, d *websocket.Dialer, s Target, header http.Header, status int) error {
	ws, resp, err := d.DialContext(ctx, s.URL, header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err == nil {
		ws.Close()
		return fmt.Errorf("bench: %s upgraded a handshake it should refuse", s.Kind)
	}
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
		return fmt.Errorf("bench: refused handshake with %s: %w", s.Kind, err)
	}
	if resp.StatusCode != status {
		return fmt.Errorf("bench: %s answered HTTP %d, want %d", s.Kind, resp.StatusCode, status)
	}
	return nil
}

// readBody returns the first line of a refusal's body (gorilla keeps up
// to 1 KiB of it readable after closing the connection).
func readBody(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return string(line)
}
