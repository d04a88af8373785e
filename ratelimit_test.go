package wssec

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestRateInf_DisablesLimits: rate.Inf (math.MaxFloat64, not +Inf) once
// built a 1 ns limiter, so with a burst of 1 a second handshake or message
// at the same instant was refused although WithHandshakeRate's doc says
// rate.Inf disables the limit. The clock is frozen: every event happens
// at one instant.
func TestRateInf_DisablesLimits(t *testing.T) {
	frozen := time.Now()
	h := newConnHarness(t, WithClock(func() time.Time { return frozen }),
		WithHandshakeRate(rate.Inf, 1), WithMessageRate(rate.Inf, 1), WithConnLimits(16, 16, 100))
	var last *testClient
	for i := range 5 {
		ws, status, err := h.dial(h.headers(connTestToken(t, "")))
		if err != nil {
			t.Fatalf("handshake %d at one instant: %d %v", i, status, err)
		}
		last = &testClient{t: t, ws: ws}
	}
	for i := range 20 {
		last.sendText(fmt.Sprintf(`{"action":"marker","id":"%d","payload":{"n":1}}`, i))
	}
	for i := range 20 {
		last.expectFrame(wireFrame{Action: "ack", ID: fmt.Sprint(i)})
	}
}
