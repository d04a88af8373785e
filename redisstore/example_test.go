package redisstore_test

import (
	"context"
	"log"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wssec/wssec"
	"github.com/wssec/wssec/redisstore"
)

// ExampleNew builds a Store that several instances of one service share,
// and follows the revocations any of them records.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "localhost:6379",
		ContextTimeoutEnabled: true, // the Store's timeout then reaches the socket
	})
	defer rdb.Close()

	st, err := redisstore.New(rdb,
		redisstore.WithPrefix("chat"),
		redisstore.WithLeaseTTL(30*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close() // stops the renewer and the feed; held leases expire on their own

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = st.Subscribe(ctx, func(rev wssec.Revocation) {
		if rev.IsZero() {
			log.Print("revocation feed (re)loaded: re-check every live socket")
			return
		}
		log.Printf("revoked: subject %q token %q", rev.Subject, rev.TokenID)
	})
	if err != nil {
		log.Fatal(err)
	}
	// Give st to wssec.New with wssec.WithStore(st).
}
