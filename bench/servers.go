package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec"
	"golang.org/x/time/rate"
)

// Kind names one of the three servers.
type Kind string

// The servers compared.
const (
	Raw        Kind = "raw"
	HandRolled Kind = "handrolled"
	WSSec      Kind = "wssec"
)

// RawWriter is a diagnostic, not one of the three servers compared: the
// raw echo with gorilla's chat-example structure, reads in the handler
// and writes from a writer goroutine fed by a channel — the structure
// wssec's Conn has (one writer owns the socket). Comparing it with Raw
// isolates what that hand-off costs, apart from any guard.
const RawWriter Kind = "raw_writer"

// Kinds lists the servers in the order tables print them.
var Kinds = []Kind{Raw, HandRolled, WSSec}

// Limits the protected servers apply. The rates are far above anything a
// benchmark reaches, so they never trip (rate.Inf is refused by wssec, and
// would skip the limiter arithmetic, which is part of the cost measured).
// The bursts are large too: a GCRA's tolerance is burst/rate in time, and
// with 1e9/s and a burst of 1e6 it is only 1 ms, so a goroutine descheduled
// for over 1 ms between reading the clock and taking the limiter's lock
// (routine on a loaded 2-core machine) is refused. 1e6/s with a burst of
// 1e9 gives a 1 000 s tolerance.
const (
	MessageRate    rate.Limit = 1e6
	MessageBurst              = 1_000_000_000
	HandshakeRate  rate.Limit = 1e6
	HandshakeBurst            = 1_000_000_000
	ConnLimit                 = 1 << 20
	MaxMessageSize            = 32 << 10
	IdleTimeout               = 60 * time.Second
	WriteTimeout              = 10 * time.Second
)

// Say is the payload of the "say" action, the only application action.
type Say struct {
	Text string `json:"t" validate:"required,max=200"`
}

// Channel is the channel every benchmark message is published on; the
// channel rule (and the hand-rolled policy) admits it only for Tenant.
const Channel = "chat:" + Tenant

// Request is the 64-byte text frame every client sends; each server
// answers with the same 64 bytes (raw echoes the frame, the protected
// servers re-encode the validated envelope).
var Request = buildRequest(64)

func buildRequest(size int) []byte {
	head := `{"action":"say","channel":"` + Channel + `","payload":{"t":"`
	tail := `"}}`
	n := size - len(head) - len(tail)
	if n < 1 {
		panic("bench: request envelope longer than its size")
	}
	return []byte(head + strings.Repeat("x", n) + tail)
}

// blocked is the application policy both protected servers run after the
// channel check: a subject deny list (empty, but consulted).
var blocked = map[string]bool{}

// Options configure Start.
type Options struct {
	// Key verifies tokens; required for HandRolled and WSSec.
	Key *Key
	// HandshakeRate and HandshakeBurst set wssec's per-IP handshake limit.
	// Zero means HandshakeRate and HandshakeBurst, which never trip.
	HandshakeRate  rate.Limit
	HandshakeBurst int
}

// Server is a benchmark server listening on 127.0.0.1. Close stops it and
// every goroutine it started.
type Server struct {
	Kind Kind
	// URL is the ws:// address of the endpoint.
	URL string
	// Addr is the listener's host:port.
	Addr string

	srv   *http.Server
	ln    net.Listener
	guard *wssec.Guard
	serve chan error

	upgrades atomic.Int64 // sockets upgraded since Start
	live     atomic.Int64 // sockets open now

	mu       sync.Mutex // guards closed and sockets
	closed   bool
	sockets  map[*websocket.Conn]struct{}
	closers  map[io.Closer]struct{} // the peers' sockets
	handlers sync.WaitGroup         // handler goroutines
}

// Start starts a server of kind on a fresh loopback port.
func Start(kind Kind, o Options) (*Server, error) {
	s := &Server{Kind: kind, sockets: make(map[*websocket.Conn]struct{}), closers: make(map[io.Closer]struct{})}
	var h http.Handler
	switch kind {
	case Raw:
		h = http.HandlerFunc(s.serveRaw)
	case RawWriter:
		h = http.HandlerFunc(s.serveRawWriter)
	case HandRolled:
		hr, err := newHandRolled(s, o)
		if err != nil {
			return nil, err
		}
		h = hr
	case Gws:
		h = s.gwsHandler()
	case Coder:
		h = http.HandlerFunc(s.serveCoder)
	case WSSec:
		g, err := newGuard(o)
		if err != nil {
			return nil, err
		}
		s.guard = g
		h = g.Handler(s.serveWSSec)
	default:
		return nil, fmt.Errorf("bench: unknown server kind %q", kind)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if s.guard != nil {
			s.guard.Close()
		}
		return nil, err
	}
	s.ln = ln
	s.Addr = ln.Addr().String()
	s.URL = "ws://" + s.Addr + "/ws"
	// The same http.Server settings for all of them. ReadHeaderTimeout is
	// long for the same reason as dialTimeout: a starved process must
	// not turn into failed handshakes.
	s.srv = &http.Server{
		Handler:           s.track(h),
		ReadHeaderTimeout: dialTimeout,
		MaxHeaderBytes:    16 << 10,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.serve = make(chan error, 1)
	go func() { s.serve <- s.srv.Serve(ln) }()
	return s, nil
}

// Target returns where clients connect.
func (s *Server) Target() Target { return Target{Kind: s.Kind, Addr: s.Addr, URL: s.URL} }

// Upgrades reports how many sockets the server has upgraded since Start.
func (s *Server) Upgrades() int64 { return s.upgrades.Load() }

// WaitUpgrades waits until the server has counted n upgrades (the
// counter moves just after the 101 is written, so it can trail the
// client by a moment) or d has passed, and returns the count.
func (s *Server) WaitUpgrades(n int64, d time.Duration) int64 {
	deadline := time.Now().Add(d)
	for {
		got := s.upgrades.Load()
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond)
	}
}

// Live reports how many upgraded sockets are open now.
func (s *Server) Live() int64 { return s.live.Load() }

// Header returns the request header of an accepted handshake: nothing for
// raw (a client without an Origin passes gorilla's same-origin check), an
// allowed Origin and a bearer token for the protected servers.
func (s *Server) Header(token string) http.Header { return AcceptHeader(s.Kind, token) }

// AcceptHeader is the handshake header a server of kind accepts.
func AcceptHeader(kind Kind, token string) http.Header {
	if kind == Raw || kind == RawWriter || kind == Gws || kind == Coder {
		return http.Header{}
	}
	return ProtectedHeader(Origin, "Bearer "+token)
}

// ProtectedHeader builds a handshake header with origin and an
// Authorization value; empty values are left out.
func ProtectedHeader(origin, authorization string) http.Header {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	if authorization != "" {
		h.Set("Authorization", authorization)
	}
	return h
}

// track counts handler goroutines so Close can wait for them, and refuses
// new requests once Close has begun.
func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "closing", http.StatusServiceUnavailable)
			return
		}
		s.handlers.Add(1)
		s.mu.Unlock()
		defer s.handlers.Done()
		h.ServeHTTP(w, r)
	})
}

// adopt registers an upgraded gorilla socket so Close can close it; it
// reports false (and closes ws) if the server is closing.
func (s *Server) adopt(ws *websocket.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ws.Close()
		return false
	}
	s.sockets[ws] = struct{}{}
	s.upgrades.Add(1)
	s.live.Add(1)
	return true
}

// adoptCloser is adopt for a peer library's socket.
func (s *Server) adoptCloser(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.closers[c] = struct{}{}
	s.upgrades.Add(1)
	s.live.Add(1)
	return true
}

func (s *Server) releaseCloser(c io.Closer) {
	s.mu.Lock()
	delete(s.closers, c)
	s.mu.Unlock()
	s.live.Add(-1)
	c.Close()
}

func (s *Server) release(ws *websocket.Conn) {
	s.mu.Lock()
	delete(s.sockets, ws)
	s.mu.Unlock()
	s.live.Add(-1)
	ws.Close()
}

// Close stops the listener, closes every socket and waits for every
// handler goroutine to return.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	socks := make([]*websocket.Conn, 0, len(s.sockets))
	for ws := range s.sockets {
		socks = append(socks, ws)
	}
	closers := make([]io.Closer, 0, len(s.closers))
	for c := range s.closers {
		closers = append(closers, c)
	}
	s.mu.Unlock()
	for _, c := range closers {
		c.Close()
	}

	err := s.srv.Close() // listener and idle HTTP connections
	if s.guard != nil {
		s.guard.Close() // its sockets, with 1001, and their goroutines
	}
	for _, ws := range socks {
		ws.Close()
	}
	s.handlers.Wait()
	if serr := <-s.serve; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// rawUpgrader is gorilla's default: zero value, same-host origin check.
var rawUpgrader websocket.Upgrader

// serveRaw is the gorilla echo example: no checks beyond gorilla's own.
func (s *Server) serveRaw(w http.ResponseWriter, r *http.Request) {
	ws, err := rawUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if !s.adopt(ws) {
		return
	}
	defer s.release(ws)
	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if err := ws.WriteMessage(mt, data); err != nil {
			return
		}
	}
}

// serveRawWriter is serveRaw with the writes moved to a writer goroutine
// that a bounded channel feeds.
func (s *Server) serveRawWriter(w http.ResponseWriter, r *http.Request) {
	ws, err := rawUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if !s.adopt(ws) {
		return
	}
	defer s.release(ws)
	send := make(chan []byte, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		failed := false
		for b := range send {
			if !failed && ws.WriteMessage(websocket.TextMessage, b) != nil {
				failed = true
				ws.Close() // ends the reader; keep draining until it stops
			}
		}
	}()
	defer func() {
		close(send)
		<-done
	}()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		send <- data
	}
}

// policy is the application's rule in the wssec server: the deny list.
// (Tenant and scope are the channel rule's job.)
func policy(_ context.Context, p *wssec.Principal, _ *wssec.Message) error {
	if blocked[p.Subject] {
		return errors.New("subject blocked")
	}
	return nil
}

func newGuard(o Options) (*wssec.Guard, error) {
	if o.Key == nil {
		return nil, errors.New("bench: wssec server needs a key")
	}
	keyOpt := wssec.WithKeySet(o.Key.set)
	if o.Key.Alg == HS256 {
		keyOpt = wssec.WithHMACKey(o.Key.public.([]byte))
	}
	hr, hb := o.HandshakeRate, o.HandshakeBurst
	if hr == 0 {
		hr = HandshakeRate
	}
	if hb == 0 {
		hb = HandshakeBurst
	}
	return wssec.New(
		wssec.WithOrigins(Origin),
		keyOpt,
		wssec.WithAction[Say]("say"),
		wssec.WithChannelRules(wssec.ChannelRule{Pattern: "chat:{tenant}", Write: Scope}),
		wssec.WithPolicy(policy),
		wssec.WithMessageRate(MessageRate, MessageBurst),
		wssec.WithHandshakeRate(hr, hb),
		wssec.WithConnLimits(ConnLimit, ConnLimit, ConnLimit),
		wssec.WithMaxMessageSize(MaxMessageSize),
		wssec.WithInsecureTransport(), // loopback only
		wssec.WithLogger(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))),
	)
}

// serveWSSec echoes every message that passed the guards.
func (s *Server) serveWSSec(ctx context.Context, c *wssec.Conn) {
	s.upgrades.Add(1)
	s.live.Add(1)
	defer s.live.Add(-1)
	for {
		m, err := c.ReadMessage(ctx)
		if err != nil {
			return
		}
		if err := c.Send(ctx, m); err != nil {
			return
		}
	}
}

// handRolled is the careful user's server, written from the usual advice.
type handRolled struct {
	s        *Server
	upgrader websocket.Upgrader
	parseKey jwt.ParseOption
	validate *validator.Validate
}

// envelope is the hand-rolled server's message envelope.
type envelope struct {
	Action  string          `json:"action"`
	Channel string          `json:"channel,omitempty"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// claims is what the hand-rolled server keeps from the token.
type claims struct {
	subject string
	tenant  string
	scopes  []string
}

var (
	errForbidden = []byte(`{"action":"error","error":{"code":"forbidden"}}`)
	errInvalid   = []byte(`{"action":"error","error":{"code":"invalid_message"}}`)
	errUnknown   = []byte(`{"action":"error","error":{"code":"unknown_action"}}`)
	errRate      = []byte(`{"action":"error","error":{"code":"rate_limited"}}`)
)

func newHandRolled(s *Server, o Options) (*handRolled, error) {
	if o.Key == nil {
		return nil, errors.New("bench: hand-rolled server needs a key")
	}
	allowed := map[string]bool{Origin: true}
	return &handRolled{
		s: s,
		upgrader: websocket.Upgrader{
			CheckOrigin: func(r *http.Request) bool { return allowed[r.Header.Get("Origin")] },
		},
		parseKey: jwt.WithKey(o.Key.sigAlg, o.Key.public),
		validate: validator.New(validator.WithRequiredStructEnabled()),
	}, nil
}

func (h *handRolled) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Authenticate first (the usual middleware order), then upgrade; the
	// Upgrader's CheckOrigin runs inside Upgrade.
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	t, err := jwt.Parse([]byte(tok), h.parseKey, jwt.WithAcceptableSkew(30*time.Second))
	if err != nil {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var cl claims
	cl.subject, _ = t.Subject()
	var scope string
	if t.Get("tenant", &cl.tenant) != nil || t.Get("scope", &scope) != nil || cl.subject == "" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	cl.scopes = strings.Fields(scope)

	ws, err := h.upgrader.Upgrade(w, r, nil) // 403 on a bad Origin
	if err != nil {
		return
	}
	s := h.s
	if !s.adopt(ws) {
		return
	}
	defer s.release(ws)
	ws.SetReadLimit(MaxMessageSize)
	lim := rate.NewLimiter(MessageRate, MessageBurst)
	for {
		if err := ws.SetReadDeadline(time.Now().Add(IdleTimeout)); err != nil {
			return
		}
		mt, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		reply := h.handle(&cl, lim, mt, data)
		if err := ws.SetWriteDeadline(time.Now().Add(WriteTimeout)); err != nil {
			return
		}
		if err := ws.WriteMessage(websocket.TextMessage, reply); err != nil {
			return
		}
	}
}

// handle checks one message and returns the frame to answer with.
func (h *handRolled) handle(cl *claims, lim *rate.Limiter, mt int, data []byte) []byte {
	if !lim.Allow() {
		return errRate
	}
	if mt != websocket.TextMessage {
		return errInvalid
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return errInvalid
	}
	if env.Action != "say" {
		return errUnknown
	}
	var p Say
	pd := json.NewDecoder(bytes.NewReader(env.Payload))
	pd.DisallowUnknownFields()
	if err := pd.Decode(&p); err != nil {
		return errInvalid
	}
	if err := h.validate.Struct(&p); err != nil {
		return errInvalid
	}
	if err := handPolicy(cl, &env); err != nil {
		return errForbidden
	}
	out, err := json.Marshal(&env)
	if err != nil {
		return errInvalid
	}
	return out
}

// handPolicy is the hand-rolled authorization: the channel must be the
// caller's tenant's, the caller needs the write scope, and the subject
// must not be on the deny list.
func handPolicy(cl *claims, env *envelope) error {
	if env.Channel != "chat:"+cl.tenant || cl.tenant == "" {
		return errors.New("channel of another tenant")
	}
	ok := false
	for _, s := range cl.scopes {
		if s == Scope {
			ok = true
			break
		}
	}
	if !ok {
		return errors.New("missing scope")
	}
	if blocked[cl.subject] {
		return errors.New("subject blocked")
	}
	return nil
}

// StartRateLimited starts a wssec server whose handshake bucket is empty:
// one handshake per 1 000 s per IP, and the one allowed is spent here (on
// a request without a token, refused with 401). Every later handshake
// from 127.0.0.1 is refused with 429 before its token is looked at.
func StartRateLimited(key *Key) (*Server, error) {
	s, err := Start(WSSec, Options{Key: key, HandshakeRate: 0.001, HandshakeBurst: 1})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if err := Refused(ctx, Dialer(s.Addr), s.Target(), ProtectedHeader(Origin, ""), http.StatusUnauthorized); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
