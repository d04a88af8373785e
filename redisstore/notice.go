package redisstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wssec/wssec"
)

// A notice is one message on the notices channel, compact JSON:
//
//	{"k":"s","id":"alice","ib":1700000000000000,"ttl":900000}  subject revocation
//	{"k":"t","id":"7f3c…","ttl":900000}                         token revocation
//	{"k":"b","id":"ip:203.0.113.7","ttl":60000}                 ban
//	{"k":"d","id":"sub:alice","r":"disconnected","ttl":1}       session notice
//	{"k":"d","id":"sub:alice","r":"session replaced","o":true,"ttl":1}
//
// ib is the revocation's IssuedBefore in Unix microseconds (subject
// revocations only); ttl is how long it holds, in milliseconds from
// receipt. A session notice (wssec.SessionNotice: close the live sockets
// of a subject, "sub:<subject>", or of a client IP, "ip:<addr>") keeps
// nothing: its ttl is 1, r is the close reason and o asks for the oldest
// socket only. Receivers validate every field and ignore (and count) a
// message that does not decode.
type notice struct {
	Kind string `json:"k"`
	ID   string `json:"id"`
	IB   *int64 `json:"ib,omitempty"`
	TTL  int64  `json:"ttl"`
	R    string `json:"r,omitempty"`
	O    bool   `json:"o,omitempty"`
}

// The kinds of notice.
const (
	kindSubject = "s"
	kindToken   = "t"
	kindBan     = "b"
	kindSession = "d"
)

// maxReasonLen bounds a session notice's close reason: what a close
// frame can carry.
const maxReasonLen = 123

// maxIDLen bounds a subject, token id or ban key (bytes); maxNoticeLen
// bounds a whole message: an id escaped at worst (\u00XX, six bytes a
// byte) and the rest.
const (
	maxIDLen     = 4096
	maxNoticeLen = 6*maxIDLen + 128
)

// validID reports whether id can be published: not empty, at most
// maxIDLen bytes and valid UTF-8 (JSON would otherwise replace bytes, and
// other instances would see another id). Subjects and token ids taken
// from a JWT always are.
func validID(id string) bool {
	return id != "" && len(id) <= maxIDLen && utf8.ValidString(id)
}

// encodeNotice returns n's wire form.
func encodeNotice(n notice) string {
	b, err := json.Marshal(n)
	if err != nil { // cannot happen: the struct has only strings and ints
		panic(err)
	}
	return string(b)
}

// decodeNotice parses and validates a notice. It never panics.
func decodeNotice(payload string) (notice, error) {
	var n notice
	if len(payload) > maxNoticeLen {
		return n, errors.New("notice too long")
	}
	dec := json.NewDecoder(strings.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		return notice{}, fmt.Errorf("notice: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return notice{}, errors.New("notice: trailing data")
	}
	if err := n.validate(); err != nil {
		return notice{}, err
	}
	return n, nil
}

// validate checks what decodeNotice cannot express in types.
func (n notice) validate() error {
	switch n.Kind {
	case kindSubject:
		if n.IB == nil || *n.IB < 0 || *n.IB > maxMicros {
			return errors.New("notice: subject revocation without a valid ib")
		}
	case kindToken, kindBan, kindSession:
		if n.IB != nil {
			return errors.New("notice: ib on a notice that is not a subject revocation")
		}
	default:
		return errors.New("notice: unknown kind")
	}
	if !validID(n.ID) {
		return errors.New("notice: id empty, too long or not UTF-8")
	}
	if n.TTL < 1 || n.TTL > ms(maxTTL) {
		return errors.New("notice: ttl out of range")
	}
	if n.Kind != kindSession && (n.R != "" || n.O) {
		return errors.New("notice: r or o on a notice that is not a session notice")
	}
	if len(n.R) > maxReasonLen || !utf8.ValidString(n.R) {
		return errors.New("notice: reason too long or not UTF-8")
	}
	if n.Kind == kindSession {
		if _, ok := sessionNotice(n.ID, n.R, n.O); !ok {
			return errors.New("notice: session key is neither sub:<subject> nor ip:<addr>")
		}
	}
	return nil
}

// sessionNotice builds the wssec.SessionNotice for a ban or session key
// ("sub:<subject>" or "ip:<addr>").
func sessionNotice(key, reason string, oldest bool) (wssec.SessionNotice, bool) {
	if sub, ok := strings.CutPrefix(key, "sub:"); ok && sub != "" {
		return wssec.SessionNotice{Subject: sub, Reason: reason, Oldest: oldest}, true
	}
	if a, ok := strings.CutPrefix(key, "ip:"); ok {
		if ip, err := netip.ParseAddr(a); err == nil {
			return wssec.SessionNotice{IP: ip, Reason: reason, Oldest: oldest}, true
		}
	}
	return wssec.SessionNotice{}, false
}

// ttl returns the notice's TTL as a Duration.
func (n notice) ttl() time.Duration { return time.Duration(n.TTL) * time.Millisecond }

// revocation returns the wssec.Revocation a revocation notice carries.
func (n notice) revocation() wssec.Revocation {
	switch {
	case n.Kind == kindToken:
		return wssec.Revocation{TokenID: n.ID, TTL: n.ttl()}
	case n.Kind == kindSubject && n.IB != nil:
		return wssec.Revocation{Subject: n.ID, IssuedBefore: time.UnixMicro(*n.IB), TTL: n.ttl()}
	}
	return wssec.Revocation{} // not a revocation
}

// issuedBeforeMicros converts an IssuedBefore to Unix microseconds,
// rounding up (a token issued in the same microsecond stays revoked) and
// clamping to [0, maxMicros]: a zero or pre-1970 time becomes 1970, which
// still revokes every token that carries no issue time.
func issuedBeforeMicros(t time.Time) int64 {
	if t.IsZero() || t.Unix() < 0 {
		return 0
	}
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return min(us, maxMicros)
}
