package main

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/wssec/wssec"
)

// hub fans published messages out to the subscribers of a channel. It has
// no goroutine of its own: publish hands each frame to the subscribers'
// bounded send queues (wssec.Conn.Send never blocks on the network, and a
// subscriber too slow to keep up is closed with 1013), so a slow reader
// cannot stall a room. It is safe for concurrent use; the app owns it and
// closes it in Close.
type hub struct {
	published atomic.Uint64

	mu     sync.RWMutex // guards rooms and closed
	rooms  map[string]map[*wssec.Conn]struct{}
	closed bool
}

func newHub() *hub {
	return &hub{rooms: make(map[string]map[*wssec.Conn]struct{})}
}

// subscribe adds c to channel; it reports false once the hub is closed.
func (h *hub) subscribe(channel string, c *wssec.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	room := h.rooms[channel]
	if room == nil {
		room = make(map[*wssec.Conn]struct{})
		h.rooms[channel] = room
	}
	room[c] = struct{}{}
	return true
}

// unsubscribe removes c from channel, and the channel once it is empty.
func (h *hub) unsubscribe(channel string, c *wssec.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	room := h.rooms[channel]
	delete(room, c)
	if len(room) == 0 {
		delete(h.rooms, channel)
	}
}

// publish sends frame (JSON) to every subscriber of channel and returns
// how many it was queued for.
func (h *hub) publish(ctx context.Context, channel string, frame []byte) int {
	h.mu.RLock()
	subs := make([]*wssec.Conn, 0, len(h.rooms[channel]))
	for c := range h.rooms[channel] {
		subs = append(subs, c)
	}
	h.mu.RUnlock()
	n := 0
	raw := json.RawMessage(frame)
	for _, c := range subs {
		if c.Send(ctx, raw) == nil {
			n++
		}
	}
	h.published.Add(1)
	return n
}

// hubStats is a snapshot for /metrics.
type hubStats struct {
	rooms, subscriptions int
	published            uint64
}

func (h *hub) stats() hubStats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	s := hubStats{rooms: len(h.rooms), published: h.published.Load()}
	for _, r := range h.rooms {
		s.subscriptions += len(r)
	}
	return s
}

// close drops every subscription and refuses new ones. The sockets
// themselves belong to the Guard, which closes them.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	clear(h.rooms)
}
