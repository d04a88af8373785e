package redisstore

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssec/wssec"
)

// BenchmarkGuardRoundTrips reports the Redis round trips a Guard on a
// redisstore makes per accepted handshake (target: at most 2), per closed
// connection (its slots given back), and per message (target: 0: message
// rates stay in the instance).
//
//	go test -run='^$' -bench=GuardRoundTrips -benchtime=200x ./redisstore/
func BenchmarkGuardRoundTrips(b *testing.B) {
	addr, _, _ := startRedis(b)
	b.Run("handshake", func(b *testing.B) {
		in := newInstance(b, addr, testPrefix(b), nil)
		tok := token(b, "alice")
		var handshakeRT, closeRT uint64
		for b.Loop() {
			before := in.store.RoundTrips()
			c := in.mustOpen(tok)
			handshakeRT += in.store.RoundTrips() - before
			before = in.store.RoundTrips()
			closed := in.obs.count(wssec.EventConnClosed)
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			c.ReadMessage() // the server's close
			c.Close()
			// The server gives the slots back before it reports the close.
			eventually(b, 10*time.Second, "the server closes its side", func() bool { return in.obs.count(wssec.EventConnClosed) > closed })
			closeRT += in.store.RoundTrips() - before
		}
		b.ReportMetric(float64(handshakeRT)/float64(b.N), "rt/handshake")
		b.ReportMetric(float64(closeRT)/float64(b.N), "rt/close")
	})
	b.Run("message", func(b *testing.B) {
		in := newInstance(b, addr, testPrefix(b), nil, wssec.WithMessageRate(1e9, 1<<30))
		c := in.mustOpen(token(b, "bob"))
		msg := []byte(`{"action":"ping","id":"1"}`)
		before := in.store.RoundTrips()
		b.ReportAllocs()
		for b.Loop() {
			if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.ReadMessage(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(in.store.RoundTrips()-before)/float64(b.N), "rt/message")
	})
}
