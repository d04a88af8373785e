package redisstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
//
// ib is the revocation's IssuedBefore in Unix microseconds (subject
// revocations only); ttl is how long it holds, in milliseconds from
// receipt. Receivers validate every field and ignore (and count) a
// message that does not decode.
type notice struct {
	Kind string `json:"k"`
	ID   string `json:"id"`
	IB   *int64 `json:"ib,omitempty"`
	TTL  int64  `json:"ttl"`
}

// The kinds of notice.
const (
	kindSubject = "s"
	kindToken   = "t"
	kindBan     = "b"
)

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
	case kindToken, kindBan:
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
	return nil
}

// ttl returns the notice's TTL as a Duration.
func (n notice) ttl() time.Duration { return time.Duration(n.TTL) * time.Millisecond }

// revocation returns the wssec.Revocation a revocation notice carries.
func (n notice) revocation() wssec.Revocation {
	if n.Kind == kindToken {
		return wssec.Revocation{TokenID: n.ID, TTL: n.ttl()}
	}
	return wssec.Revocation{Subject: n.ID, IssuedBefore: time.UnixMicro(*n.IB), TTL: n.ttl()}
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
