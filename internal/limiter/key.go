package limiter

import (
	"hash/maphash"
	"net/netip"
)

// Key identifies one limited subject in a [Table]: the 16-byte form of an IP
// address ([KeyFromAddr]) or a keyed hash of a string such as a token
// subject ([KeyFromString]).
//
// The two kinds share one key space, so an IP key and a string key could in
// principle coincide; use a separate Table for each kind of subject.
type Key [16]byte

// keySeeds are drawn once per process and never change afterwards. They are
// secret to the process, so a client cannot choose strings whose keys
// collide.
var keySeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// KeyFromString returns a 128-bit key for s: two 64-bit maphash sums under
// independent seeds drawn at random when the process starts. Keys are stable
// within one process and differ between processes; do not persist them or
// share them across instances. Equal strings give equal keys; distinct
// strings collide with probability about 2^-128 for anyone who does not know
// the seeds. It does not allocate.
func KeyFromString(s string) Key {
	a := maphash.String(keySeeds[0], s)
	b := maphash.String(keySeeds[1], s)
	var k Key
	for i := range 8 {
		k[i] = byte(a >> (8 * i))
		k[8+i] = byte(b >> (8 * i))
	}
	return k
}

// KeyFromAddr returns the key of an IP address: its 16-byte form, with IPv4
// addresses in their IPv4-mapped IPv6 form so that 192.0.2.1 and
// ::ffff:192.0.2.1 are one key. The zone is ignored. A single IPv6 client
// usually controls a whole /64, so callers limiting IPv6 clients should pass
// the masked prefix address (for example from a.Prefix(64)) rather than the
// full address.
func KeyFromAddr(a netip.Addr) Key {
	return Key(a.As16())
}
