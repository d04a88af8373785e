package wssec

import (
	"reflect"

	"github.com/wssec/wssec/internal/strictjson"
)

// Hooks for the package's own tests: read-only views of internal state
// that production code has no use for.

// counts reports the live counters.
func (l *limits) counts() (ips, subs, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.perIP), len(l.perSub), l.total
}

// entries reports how many entries the cache holds, expired ones not yet
// dropped included.
func (tc *tokenCache) entries() int {
	if c := tc.c.Load(); c != nil {
		return c.Len()
	}
	return 0
}

// decode turns a payload that passed the envelope into a new value of the
// registered type and runs the validator. The returned reason is safe for
// the client.
func (m *messageRules) decode(r *registered, payload strictjson.Checked) (any, string) {
	v := reflect.New(r.typ)
	if reason := m.decodeInto(r, payload, nil, v); reason != "" {
		return nil, reason
	}
	return v.Interface(), ""
}

// verifications returns the verifier's signature checks and cache hits.
func verifications(g *Guard) (sig, hits int64) {
	return g.ver.sigChecks.Load(), g.ver.cacheHits.Load()
}
