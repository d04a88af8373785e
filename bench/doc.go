// Package bench measures what wssec's protection costs.
//
// It builds three WebSocket servers that answer the same 64-byte JSON
// envelope with the same 64 bytes, all on 127.0.0.1:
//
//   - raw: gorilla/websocket with the zero Upgrader and no checks at all,
//     the floor;
//   - hand-rolled: what a careful user writes from the usual advice — an
//     Upgrader whose CheckOrigin consults an allowlist, jwx v3 jwt.Parse
//     with jwt.WithKey, an encoding/json Decoder with
//     DisallowUnknownFields into an envelope struct, validator/v10 on the
//     payload, a rate.Limiter per connection and a tenant policy function;
//   - wssec: the same protection through Guard.Handler.
//
// The workloads (round trips with one and with 64 clients, accepted and
// refused handshakes, idle memory per socket) are exported so that the
// Go benchmarks in this package and the interleaving runner in
// bench/cmd/compare share one implementation. Every workload is bounded
// by a count or a duration, and every server stops every goroutine it
// started when it is closed.
package bench
