package wssec

import (
	"crypto/sha256"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wssec/wssec/internal/ttlcache"
)

// tokenCacheSize bounds each Guard's verified-token cache. When that many
// live tokens are cached, a new token is verified but not cached until an
// entry expires: a full cache costs a signature check, never a refusal.
const tokenCacheSize = 10_000

// maxCachedTokenLen is the longest token the cache keeps, in bytes of
// the compact form; longer tokens are verified every time. Typical access
// tokens are well under 2 KiB.
const maxCachedTokenLen = 2048

// maxCachedEntryCost bounds the estimated heap bytes of one entry (see
// entryCost): a token whose claims take more is verified every time. With
// tokenCacheSize entries this bounds the whole cache; BENCHMARKS.md has
// the measured figures.
const maxCachedEntryCost = 4096

// maxCachedClaimDepth is the deepest nesting of a private claim that is
// copied for the cache; a token with deeper claims is not cached.
const maxCachedClaimDepth = 16

// tokenDigest is the SHA-256 of a compact token: the only thing kept of
// the token itself.
type tokenDigest [sha256.Size]byte

// verifiedToken is what a successful verification learned, apart from the
// signature: the Principal (a private template, never handed out) and the
// time claims a cache hit must check again against the clock.
type verifiedToken struct {
	p      *Principal // its ExpiresAt and IssuedAt are the exp and iat
	nbf    time.Time
	hasNbf bool
	hasIat bool
	gen    uint64 // generation of the key ring that verified the signature
}

// tokenCache remembers tokens whose signature and claims were verified, so
// that a reconnect with the same token skips the signature check.
//
// Entries are keyed by the SHA-256 of the exact token. jwtpre.Check, which
// runs first on every token, accepts only canonical unpadded base64url, so
// one decoded token has exactly one accepted encoding: the digest of the
// compact form identifies the decoded header, payload and signature. An
// entry expires at the token's exp (without the clock skew) and is ignored
// once the key ring that verified it has been replaced. The zero value is
// ready to use; the table is allocated on the first insert.
type tokenCache struct {
	size int // capacity; 0 means tokenCacheSize (tests set it lower)

	once sync.Once
	c    atomic.Pointer[ttlcache.Cache[tokenDigest, verifiedToken]]
}

func digestToken(tok string) tokenDigest { return sha256.Sum256([]byte(tok)) }

// get returns the entry for d if it is live at now.
func (tc *tokenCache) get(d *tokenDigest, now time.Time) (verifiedToken, bool) {
	c := tc.c.Load()
	if c == nil {
		return verifiedToken{}, false
	}
	return c.Get(*d, now.UnixNano())
}

// put caches a verified token until exp, replacing an entry of an older
// key ring. A full cache leaves the token uncached.
func (tc *tokenCache) put(d *tokenDigest, e verifiedToken, exp, now time.Time) {
	if !now.Before(exp) {
		return
	}
	tc.once.Do(func() {
		n := tc.size
		if n <= 0 {
			n = tokenCacheSize
		}
		tc.c.Store(ttlcache.New[tokenDigest, verifiedToken](n))
	})
	c := tc.c.Load()
	c.Delete(*d) // an entry of the same token from an older key ring
	_ = c.Add(*d, e, exp.UnixNano(), now.UnixNano())
}

// clonePrincipal returns a copy of p that shares no mutable state with it:
// callers may change the Principal they get (its Claims, Scopes or Roles)
// without reaching the cached one or another connection's. It reports
// false when a claim holds a value of a type it cannot copy, or nests
// deeper than maxCachedClaimDepth; such a token is not cached.
//
// Principal's reference-typed fields are Scopes, Roles and Claims;
// TestClonePrincipal_CoversEveryField fails if another one is added
// without being copied here.
func clonePrincipal(p *Principal) (*Principal, bool) {
	q := *p
	q.Scopes = slices.Clone(p.Scopes)
	q.Roles = slices.Clone(p.Roles)
	if p.Claims != nil {
		q.Claims = make(map[string]any, len(p.Claims))
		for k, v := range p.Claims {
			c, ok := cloneClaim(v, 0)
			if !ok {
				return nil, false
			}
			q.Claims[k] = c
		}
	}
	return &q, true
}

// Costs of the parts of a cached entry, in estimated heap bytes,
// calibrated against the measured heap of 10 000 entries of several
// shapes (BENCHMARKS.md).
const (
	costEntry = 640 // the table's slot and queue slot, the Principal
	costBox   = 16  // a string or time boxed in an interface, besides its bytes
	costNum   = 24  // a number boxed in an interface
	costSlice = 48  // a slice header boxed in an interface, and its array's rounding
	costElem  = 16  // one slice element
)

// strCost estimates the heap bytes of a string of l bytes: its own
// allocation, rounded up to the allocator's 8-byte classes.
func strCost(l int) int { return (l + 7) &^ 7 }

// mapCost estimates a map[string]any of n members, besides its keys' and
// values' own bytes: one group of 8 slots, or a table of a power of two
// slots at most 7/8 full.
func mapCost(n int) int {
	if n <= 8 {
		return 512
	}
	slots := 16
	for slots*7/8 < n {
		slots *= 2
	}
	return 64 + 40*slots
}

// entryCost estimates the heap bytes a cache entry for p holds. It
// reports false when that exceeds maxCachedEntryCost, when a claim nests
// deeper than maxCachedClaimDepth, or when a claim holds a type
// clonePrincipal cannot copy: such a token is not cached.
func entryCost(p *Principal) (int, bool) {
	n := costEntry + strCost(len(p.Subject)) + strCost(len(p.Tenant)) + strCost(len(p.ID)) + mapCost(len(p.Claims))
	for _, l := range [][]string{p.Scopes, p.Roles} {
		n += costElem * len(l)
		for _, x := range l {
			n += strCost(len(x))
		}
	}
	for k, v := range p.Claims {
		if n = claimCost(v, 0, n+strCost(len(k))); n > maxCachedEntryCost {
			return n, false
		}
	}
	return n, n <= maxCachedEntryCost
}

// claimCost adds the cost of a decoded JSON value to n; past the budget,
// the depth limit or on a type cloneClaim refuses, it returns more than
// maxCachedEntryCost.
func claimCost(v any, depth, n int) int {
	const over = maxCachedEntryCost + 1
	if depth > maxCachedClaimDepth || n > maxCachedEntryCost {
		return over
	}
	switch x := v.(type) {
	case nil, bool:
		return n
	case string:
		return n + costBox + strCost(len(x))
	case json.Number:
		return n + costBox + strCost(len(x))
	case float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return n + costNum
	case time.Time:
		return n + costBox + 24
	case []string:
		n += costSlice + costElem*len(x)
		for _, e := range x {
			n += strCost(len(e))
		}
		return n
	case []any:
		n += costSlice + costElem*len(x)
		for _, e := range x {
			if n = claimCost(e, depth+1, n); n > maxCachedEntryCost {
				return over
			}
		}
		return n
	case map[string]any:
		n += mapCost(len(x))
		for k, e := range x {
			if n = claimCost(e, depth+1, n+strCost(len(k))); n > maxCachedEntryCost {
				return over
			}
		}
		return n
	}
	return over
}

// cloneClaim deep-copies a decoded JSON value.
func cloneClaim(v any, depth int) (any, bool) {
	if depth > maxCachedClaimDepth {
		return nil, false
	}
	switch x := v.(type) {
	case nil, string, bool, float64, float32, json.Number,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, time.Time:
		return x, true
	case []string:
		return slices.Clone(x), true
	case []any:
		if x == nil {
			return x, true
		}
		out := make([]any, len(x))
		for i, e := range x {
			c, ok := cloneClaim(e, depth+1)
			if !ok {
				return nil, false
			}
			out[i] = c
		}
		return out, true
	case map[string]any:
		if x == nil {
			return x, true
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, ok := cloneClaim(e, depth+1)
			if !ok {
				return nil, false
			}
			out[k] = c
		}
		return out, true
	}
	return nil, false
}
