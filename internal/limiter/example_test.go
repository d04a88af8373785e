package limiter_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/wssec/wssec/internal/limiter"
)

func ExampleGCRA() {
	g := limiter.NewGCRA(2, 3) // 2 messages/s, bursts of 3
	var tat int64              // one connection's state, owned by its reader goroutine
	now := time.Unix(1_750_000_000, 0)
	for i := range 4 {
		ok, retry := g.Allow(&tat, now.UnixNano())
		fmt.Println(i+1, ok, retry)
	}
	ok, _ := g.Allow(&tat, now.Add(500*time.Millisecond).UnixNano())
	fmt.Println("500ms later:", ok)
	// Output:
	// 1 true 0s
	// 2 true 0s
	// 3 true 0s
	// 4 false 500ms
	// 500ms later: true
}

func ExampleTable() {
	handshakes, err := limiter.NewTable(100_000, limiter.NewGCRA(5, 20))
	if err != nil {
		panic(err)
	}
	ip := limiter.KeyFromAddr(netip.MustParseAddr("192.0.2.1"))
	now := time.Unix(1_750_000_000, 0).UnixNano()
	admitted := 0
	var retry time.Duration
	for range 25 {
		var ok bool
		if ok, retry = handshakes.Allow(ip, now); ok {
			admitted++
		}
	}
	fmt.Println(admitted, "admitted; retry after", retry)
	// Output: 20 admitted; retry after 200ms
}
