package wssec

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Principal is the authenticated party behind a connection. From a JWT:
// Subject is sub, Tenant the "tenant" claim, Scopes the space-separated
// "scope" claim or the "scp" array, Roles the "roles" array, ExpiresAt exp.
// Claims holds the token's other (private) claims. A Principal is never
// modified after the handshake that produced it; treat it as read-only.
type Principal struct {
	Subject   string
	Tenant    string
	Scopes    []string
	Roles     []string
	ExpiresAt time.Time
	Claims    map[string]any
	// ID is the token's jti, if any.
	ID string
	// IssuedAt is the token's iat, if any.
	IssuedAt time.Time
}

// HasScope reports whether p holds scope s.
func (p *Principal) HasScope(s string) bool {
	return p != nil && slices.Contains(p.Scopes, s)
}

// HasRole reports whether p holds role r. The guards never look at
// roles (channel rules and RequireScope check scopes): it is for a Policy
// or a handler that authorizes by role.
func (p *Principal) HasRole(r string) bool {
	return p != nil && slices.Contains(p.Roles, r)
}

type principalKey struct{}

// PrincipalFrom returns the Principal the guards authenticated for the
// request or connection that ctx belongs to. It is how the handler behind
// Wrap learns who connected before it calls Upgrade, and how code that
// holds only a Conn's Context does after (Conn.Principal is the same
// once the Conn exists, and follows re-authentication).
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// Policy authorizes one message of an authenticated principal, after the
// envelope, the payload schema and the channel rules accepted it. A nil
// error allows the message; any error denies it (the client receives a
// "forbidden" error frame; the error text goes to the log only). It is
// called on the connection's reading goroutine and must be safe for
// concurrent use across connections.
type Policy func(ctx context.Context, p *Principal, m *Message) error

// ChannelRule admits channels matching Pattern. A pattern is a
// colon-separated list of segments; "{tenant}" must equal the principal's
// Tenant, "{sub}" its Subject, and a final "*" matches one or more
// remaining segments. Read is the scope needed to subscribe or unsubscribe,
// Write the scope needed for every other action; an empty scope needs none
// beyond the match.
type ChannelRule struct {
	Pattern string
	Read    string
	Write   string
}

// segKind is one compiled channel pattern segment.
type segKind uint8

const (
	segLiteral segKind = iota
	segTenant
	segSubject
	segRest // a final "*": one or more remaining segments
	segAny  // "{*}": exactly one segment, any value
)

type segment struct {
	kind segKind
	lit  string
}

// compiledRule is a ChannelRule parsed by New.
type compiledRule struct {
	rule ChannelRule
	segs []segment
}

// maxChannelSegments bounds the work a channel match can cost.
const maxChannelSegments = 16

func compileRule(r ChannelRule) (compiledRule, error) {
	cr := compiledRule{rule: r}
	if r.Pattern == "" {
		return cr, errors.New("empty pattern")
	}
	parts := strings.Split(r.Pattern, ":")
	if len(parts) > maxChannelSegments {
		return cr, fmt.Errorf("more than %d segments", maxChannelSegments)
	}
	for i, p := range parts {
		switch {
		case p == "":
			return cr, errors.New("empty segment")
		case p == "{tenant}":
			cr.segs = append(cr.segs, segment{kind: segTenant})
		case p == "{sub}":
			cr.segs = append(cr.segs, segment{kind: segSubject})
		case p == "{*}":
			cr.segs = append(cr.segs, segment{kind: segAny})
		case p == "*":
			if i != len(parts)-1 {
				return cr, errors.New(`"*" is allowed only as the last segment`)
			}
			cr.segs = append(cr.segs, segment{kind: segRest})
		case strings.ContainsAny(p, "{}*"):
			return cr, fmt.Errorf("segment %q: only {tenant}, {sub}, {*} and a final * are special", p)
		default:
			for j := 0; j < len(p); j++ {
				if p[j] <= ' ' || p[j] >= 0x7f {
					return cr, fmt.Errorf("segment %q: printable ASCII only", p)
				}
			}
			cr.segs = append(cr.segs, segment{kind: segLiteral, lit: p})
		}
	}
	return cr, nil
}

// match reports whether channel matches the rule for principal p. It does
// not allocate. A {tenant} or {sub} segment never matches an empty value,
// so a principal without a tenant matches no tenant channel.
func (cr *compiledRule) match(channel string, p *Principal) bool {
	rest := channel
	for i, s := range cr.segs {
		if s.kind == segRest {
			return nonEmptySegments(rest)
		}
		seg, after, more := strings.Cut(rest, ":")
		rest = after
		if seg == "" {
			return false
		}
		switch s.kind {
		case segLiteral:
			if seg != s.lit {
				return false
			}
		case segTenant:
			if p == nil || p.Tenant == "" || seg != p.Tenant {
				return false
			}
		case segSubject:
			if p == nil || p.Subject == "" || seg != p.Subject {
				return false
			}
		}
		if i == len(cr.segs)-1 {
			return !more
		}
		if !more {
			return false
		}
	}
	return false
}

// nonEmptySegments reports whether s is one or more non-empty
// colon-separated segments.
func nonEmptySegments(s string) bool {
	if s == "" {
		return false
	}
	for {
		seg, rest, more := strings.Cut(s, ":")
		if seg == "" {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// authorizeChannel applies the channel rules: the first matching rule
// decides; no match denies. It returns the matching rule's pattern (a
// bounded label, "" when none matched) and a reason for the log, "" if
// allowed.
func (m *messageRules) authorizeChannel(channel, action string, p *Principal) (rule, why string) {
	for i := range m.rules {
		cr := &m.rules[i]
		if !cr.match(channel, p) {
			continue
		}
		scope := cr.rule.Write
		if action == actionSubscribe || action == actionUnsubscribe {
			scope = cr.rule.Read
		}
		if scope != "" && !p.HasScope(scope) {
			return cr.rule.Pattern, "missing scope " + scope + " for channel rule " + cr.rule.Pattern
		}
		return cr.rule.Pattern, ""
	}
	return "", "no channel rule matches"
}

// authorizeAction checks the scopes that r's action requires of every
// message (RequireScope). It returns a reason for the log, "" if allowed.
func authorizeAction(r *registered, p *Principal) string {
	for _, s := range r.scopes {
		if !p.HasScope(s) {
			return "missing scope " + s + " for action " + r.name
		}
	}
	return ""
}
