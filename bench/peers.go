package bench

import (
	"net/http"

	coder "github.com/coder/websocket"
	"github.com/lxzan/gws"
)

// Peer servers: other Go WebSocket libraries' echo servers, written the
// way their own examples are, with their defaults and no checks. They run
// in the same process and are driven by the same client as raw gorilla,
// so their ratios to raw read like wssec's. They live in this module
// (bench/go.mod), never in the library's.
const (
	// Gws is lxzan/gws: the upgrade on net/http's goroutine, then its
	// ReadLoop there, echoing from OnMessage.
	Gws Kind = "gws"
	// Coder is coder/websocket: Accept, then Read and Write on net/http's
	// goroutine.
	Coder Kind = "coder"
)

// Peers lists the peer servers in the order tables print them.
var Peers = []Kind{Gws, Coder}

// gwsEcho is gws's event handler: echo every message.
type gwsEcho struct {
	gws.BuiltinEventHandler
}

func (gwsEcho) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	_ = socket.WriteMessage(message.Opcode, message.Bytes())
}

func (s *Server) gwsHandler() http.Handler {
	up := gws.NewUpgrader(gwsEcho{}, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		socket, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		nc := socket.NetConn()
		if !s.adoptCloser(nc) {
			return
		}
		defer s.releaseCloser(nc)
		socket.ReadLoop()
	})
}

func (s *Server) serveCoder(w http.ResponseWriter, r *http.Request) {
	c, err := coder.Accept(w, r, nil)
	if err != nil {
		return
	}
	closer := coderCloser{c}
	if !s.adoptCloser(closer) {
		return
	}
	defer s.releaseCloser(closer)
	ctx := r.Context()
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, data); err != nil {
			return
		}
	}
}

// coderCloser closes a coder/websocket connection at once.
type coderCloser struct{ c *coder.Conn }

func (c coderCloser) Close() error { return c.c.CloseNow() }
