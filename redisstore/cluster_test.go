package redisstore

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wssec/wssec"
	"github.com/wssec/wssec/internal/redistest"
)

// TestRedisCluster runs two Stores, each with its own ClusterClient, on a
// real three-node Redis Cluster: the multi-key scripts (rate and two
// pools in one decision) stay on one slot thanks to the {prefix} hash
// tag, one quota holds across both, and revocations, bans, the
// single-use cache and tickets work as on a single node.
func TestRedisCluster(t *testing.T) {
	addrs := redistest.StartCluster(t, 3)
	cluster := func() *redis.ClusterClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true, DialTimeout: time.Second})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	prefix := testPrefix(t)
	a := newStore(t, cluster(), WithPrefix(prefix))
	b := newStore(t, cluster(), WithPrefix(prefix))
	ctx := testCtx(t)

	// Rate and quota in one script, across the two stores.
	slots := []wssec.Slot{{Key: "ip:192.0.2.1", Max: 2}, {Key: "total", Max: 100}}
	relA, err := a.AllowAcquire(ctx, "hs:192.0.2.1", 100, 100, time.Now(), slots)
	if err != nil {
		t.Fatalf("AllowAcquire on a cluster: %v", err)
	}
	if _, err := b.AllowAcquire(ctx, "hs:192.0.2.1", 100, 100, time.Now(), slots); err != nil {
		t.Fatalf("second slot: %v", err)
	}
	var qe *wssec.QuotaError
	if _, err := b.AllowAcquire(ctx, "hs:192.0.2.1", 100, 100, time.Now(), slots); !errors.As(err, &qe) || qe.Slot.Key != "ip:192.0.2.1" {
		t.Fatalf("third slot across both stores: %v, want a QuotaError for the IP pool", err)
	}
	relA()
	if _, err := b.AllowAcquire(ctx, "hs:192.0.2.1", 100, 100, time.Now(), slots); err != nil {
		t.Fatalf("after a release: %v", err)
	}

	// Revocations and bans fan out to the other store.
	rec := &recorder{}
	if err := b.Subscribe(ctx, rec.fn); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b's feed is up", func() bool {
		_, err := b.Revoked(ctx, "alice", "", time.Now())
		return err == nil
	})
	if err := a.Revoke(ctx, wssec.Revocation{Subject: "alice", IssuedBefore: time.Now(), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the revocation reaches b", func() bool {
		ok, err := b.Revoked(ctx, "alice", "", time.Now().Add(-time.Second))
		return err == nil && ok
	})
	if err := a.Ban(ctx, "ip:198.51.100.9", time.Minute); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the ban reaches b", func() bool {
		_, banned, err := b.Banned(ctx, "ip:198.51.100.9")
		return err == nil && banned
	})

	// Single-use cache and tickets.
	if first, err := a.Once(ctx, "r:jti-1", time.Minute); err != nil || !first {
		t.Fatalf("Once: %v %v", first, err)
	}
	if first, err := b.Once(ctx, "r:jti-1", time.Minute); err != nil || first {
		t.Fatalf("Once again, on b: %v %v, want false", first, err)
	}
	if err := a.PutTicket(ctx, "ticket-ticket-ticket-1", []byte("data"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if data, ok, err := b.TakeTicket(ctx, "ticket-ticket-ticket-1"); err != nil || !ok || string(data) != "data" {
		t.Fatalf("TakeTicket on b: %q %v %v", data, ok, err)
	}
	if _, ok, err := a.TakeTicket(ctx, "ticket-ticket-ticket-1"); err != nil || ok {
		t.Fatalf("the ticket redeemed twice: %v %v", ok, err)
	}
}
