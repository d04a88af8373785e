package redisstore

import (
	"strings"
	"testing"
	"time"
)

// noticeCases are the decoder's table cases; they also seed the fuzzer.
var noticeCases = []struct {
	name    string
	payload string
	ok      bool
}{
	{"subject revocation", `{"k":"s","id":"alice","ib":1700000000000000,"ttl":900000}`, true},
	{"token revocation", `{"k":"t","id":"jti-1","ttl":1}`, true},
	{"ban", `{"k":"b","id":"ip:203.0.113.7","ttl":60000}`, true},
	{"surrounding whitespace", " {\"k\":\"b\",\"id\":\"x\",\"ttl\":5}\n", true},
	{"ib zero", `{"k":"s","id":"a","ib":0,"ttl":5}`, true},
	{"unicode id", `{"k":"s","id":"élodie","ib":1,"ttl":5}`, true},
	{"empty", ``, false},
	{"not json", `hello`, false},
	{"null", `null`, false},
	{"array", `[]`, false},
	{"unknown kind", `{"k":"x","id":"a","ttl":5}`, false},
	{"missing kind", `{"id":"a","ttl":5}`, false},
	{"empty id", `{"k":"t","id":"","ttl":5}`, false},
	{"missing ttl", `{"k":"t","id":"a"}`, false},
	{"zero ttl", `{"k":"t","id":"a","ttl":0}`, false},
	{"negative ttl", `{"k":"t","id":"a","ttl":-5}`, false},
	{"fractional ttl", `{"k":"t","id":"a","ttl":1.5}`, false},
	{"huge ttl", `{"k":"t","id":"a","ttl":9223372036854775807}`, false},
	{"ttl overflow", `{"k":"t","id":"a","ttl":99999999999999999999}`, false},
	{"subject without ib", `{"k":"s","id":"a","ttl":5}`, false},
	{"subject with null ib", `{"k":"s","id":"a","ib":null,"ttl":5}`, false},
	{"negative ib", `{"k":"s","id":"a","ib":-1,"ttl":5}`, false},
	{"ib too large", `{"k":"s","id":"a","ib":9007199254740993,"ttl":5}`, false},
	{"ib on a ban", `{"k":"b","id":"a","ib":1,"ttl":5}`, false},
	{"unknown field", `{"k":"t","id":"a","ttl":5,"x":1}`, false},
	{"trailing data", `{"k":"t","id":"a","ttl":5}{}`, false},
	{"trailing garbage", `{"k":"t","id":"a","ttl":5} x`, false},
	{"wrong types", `{"k":1,"id":2,"ttl":"5"}`, false},
	{"id too long", `{"k":"t","id":"` + strings.Repeat("a", maxIDLen+1) + `","ttl":5}`, false},
	{"too long", strings.Repeat(" ", maxNoticeLen+1), false},
	{"longest id, escaped", `{"k":"t","id":"` + strings.Repeat(`\u0001`, maxIDLen) + `","ttl":5}`, true},
	{"deep nesting", strings.Repeat("[", 10000), false},
	{"session notice, subject", `{"k":"d","id":"sub:alice","r":"disconnected","ttl":1}`, true},
	{"session notice, ip, oldest", `{"k":"d","id":"ip:2001:db8::1","r":"session replaced","o":true,"ttl":1}`, true},
	{"session notice without reason", `{"k":"d","id":"sub:alice","ttl":1}`, true},
	{"session notice, bad key", `{"k":"d","id":"alice","ttl":1}`, false},
	{"session notice, bad ip", `{"k":"d","id":"ip:300.1.1.1","ttl":1}`, false},
	{"session notice, empty subject", `{"k":"d","id":"sub:","ttl":1}`, false},
	{"session notice with ib", `{"k":"d","id":"sub:a","ib":1,"ttl":1}`, false},
	{"reason on a revocation", `{"k":"t","id":"a","r":"x","ttl":5}`, false},
	{"oldest on a ban", `{"k":"b","id":"sub:a","o":true,"ttl":5}`, false},
	{"reason too long", `{"k":"d","id":"sub:a","r":"` + strings.Repeat("r", maxReasonLen+1) + `","ttl":1}`, false},
}

func TestDecodeNotice(t *testing.T) {
	t.Parallel()
	for _, tt := range noticeCases {
		t.Run(tt.name, func(t *testing.T) {
			n, err := decodeNotice(tt.payload)
			if (err == nil) != tt.ok {
				t.Fatalf("decodeNotice(%.60q) = %+v, %v; want ok=%v", tt.payload, n, err, tt.ok)
			}
			if err != nil {
				return
			}
			again, err := decodeNotice(encodeNotice(n))
			if err != nil || again.Kind != n.Kind || again.ID != n.ID || again.TTL != n.TTL {
				t.Errorf("round trip: %+v, %v", again, err)
			}
		})
	}
}

func TestNotice_Revocation(t *testing.T) {
	t.Parallel()
	ib := int64(1_700_000_000_123_456)
	r := notice{Kind: kindSubject, ID: "alice", IB: &ib, TTL: 1500}.revocation()
	if r.Subject != "alice" || r.TokenID != "" || r.TTL != 1500*time.Millisecond || r.IssuedBefore.UnixMicro() != ib {
		t.Errorf("subject revocation = %+v", r)
	}
	r = notice{Kind: kindToken, ID: "jti", TTL: 1}.revocation()
	if r.TokenID != "jti" || r.Subject != "" || r.TTL != time.Millisecond {
		t.Errorf("token revocation = %+v", r)
	}
}

func TestIssuedBeforeMicros(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   time.Time
		want int64
	}{
		{"zero", time.Time{}, 0},
		{"before 1970", time.Unix(-10, 0), 0},
		{"whole microsecond", time.UnixMicro(1_700_000_000_000_001), 1_700_000_000_000_001},
		{"rounds up", time.Unix(1_700_000_000, 1), 1_700_000_000_000_001},
		{"far future", time.Unix(1<<40, 0), maxMicros},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := issuedBeforeMicros(tt.in); got != tt.want {
				t.Errorf("issuedBeforeMicros(%v) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzDecodeNotice: the decoder never panics, and whatever it accepts is
// valid and survives a round trip.
func FuzzDecodeNotice(f *testing.F) {
	for _, tt := range noticeCases {
		f.Add(tt.payload)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		n, err := decodeNotice(payload)
		if err != nil {
			return
		}
		if err := n.validate(); err != nil {
			t.Fatalf("accepted an invalid notice %+v: %v", n, err)
		}
		again, err := decodeNotice(encodeNotice(n))
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", n, err)
		}
		if again.Kind != n.Kind || again.ID != n.ID || again.TTL != n.TTL || again.R != n.R || again.O != n.O ||
			(again.IB == nil) != (n.IB == nil) || (n.IB != nil && *again.IB != *n.IB) {
			t.Fatalf("round trip changed %+v into %+v", n, again)
		}
		if n.Kind != kindBan {
			_ = n.revocation()
		}
	})
}
