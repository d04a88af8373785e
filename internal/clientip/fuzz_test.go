package clientip

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

var sentinels = []error{
	ErrInvalidRemoteAddr, ErrMalformed, ErrUnknownClient, ErrInvalidProto, ErrTooManyHops, ErrHeaderTooLarge,
}

// checkInvariants asserts what holds for every input to Resolve.
func checkInvariants(t *testing.T, remote netip.Addr, trusted *Set, res Result, err error) {
	t.Helper()
	if !remote.IsValid() {
		if !errors.Is(err, ErrInvalidRemoteAddr) {
			t.Fatalf("invalid remote: err = %v", err)
		}
		return
	}
	peer := remote.Unmap().WithZone("")
	if !trusted.Contains(remote) {
		if err != nil || res != (Result{Client: peer}) {
			t.Fatalf("untrusted peer %v: Resolve() = %+v, %v; want the peer itself", remote, res, err)
		}
		return
	}
	if err != nil {
		known := false
		for _, s := range sentinels {
			known = known || errors.Is(err, s)
		}
		if !known {
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if res != (Result{}) {
			t.Fatalf("Resolve() = %+v with error %v", res, err)
		}
		return
	}
	if !res.Client.IsValid() || res.Client != res.Client.Unmap() || res.Client.Zone() != "" {
		t.Fatalf("Client %v is invalid, mapped or zoned", res.Client)
	}
	if !res.ViaProxy {
		t.Fatalf("ViaProxy = false for trusted peer %v", remote)
	}
	switch res.Proto {
	case "", ProtoHTTP, ProtoHTTPS, ProtoWS, ProtoWSS:
	default:
		t.Fatalf("Proto = %q", res.Proto)
	}
}

func seedLines(lines []string) (string, string) {
	switch len(lines) {
	case 0:
		return "", ""
	case 1:
		return lines[0], ""
	}
	return lines[0], strings.Join(lines[1:], ",")
}

func fuzzLines(a, b string) []string {
	if b == "" {
		return []string{a}
	}
	return []string{a, b}
}

func FuzzResolveForwarded(f *testing.F) {
	for _, cases := range [][]resolveCase{forwardedCases, untrustedCases, xffCases} {
		for _, c := range cases {
			if len(c.fwd) == 0 {
				continue
			}
			l1, l2 := seedLines(c.fwd)
			f.Add(c.remote, l1, l2, strings.Join(c.xff, ","))
		}
	}
	f.Add("::ffff:10.0.0.1", `for="[::ffff:10.0.0.2]:1";proto=wss, for=10.0.0.3`, `for="_x"`, "")
	trusted := testTrusted(f) // seeds pick a trusted or untrusted peer through remote

	f.Fuzz(func(t *testing.T, remoteS, fwd1, fwd2, xff string) {
		remote, err := netip.ParseAddr(remoteS)
		if err != nil {
			return
		}
		h := http.Header{"Forwarded": fuzzLines(fwd1, fwd2)}
		if xff != "" {
			h["X-Forwarded-For"] = []string{xff}
		}
		res, err := Resolve(remote, h, trusted, Forwarded)
		checkInvariants(t, remote, trusted, res, err)

		// Whatever Forwarded holds, the default source never reads it.
		xres, xerr := Resolve(remote, h, trusted, XForwardedFor)
		wantX, wantXErr := Resolve(remote, http.Header{"X-Forwarded-For": h["X-Forwarded-For"]}, trusted, XForwardedFor)
		if xres != wantX || (xerr == nil) != (wantXErr == nil) {
			t.Fatalf("X-Forwarded-For source read Forwarded: %+v, %v; without it %+v, %v", xres, xerr, wantX, wantXErr)
		}

		// Lines that parse on their own mean the same joined into one.
		if err == nil && res.ViaProxy && fwd2 != "" {
			joined := http.Header{"Forwarded": {fwd1 + ", " + fwd2}}
			res2, err2 := Resolve(remote, joined, trusted, Forwarded)
			if err2 != nil && !errors.Is(err2, ErrHeaderTooLarge) || err2 == nil && res2 != res {
				t.Fatalf("two lines: %+v; joined: %+v, %v", res, res2, err2)
			}
		}
	})
}

// referenceXFF is a deliberately plain model of the X-Forwarded-For rules.
func referenceXFF(remote netip.Addr, xff, xfp []string, trusted *Set) (Result, error) {
	res := Result{Client: remote, ViaProxy: true}
	size := 0
	for _, l := range append(append([]string(nil), xff...), xfp...) {
		size += len(l) + 1
	}
	if size > MaxHeaderBytes {
		return Result{}, ErrHeaderTooLarge
	}
	split := func(lines []string) []string {
		var out []string
		for _, item := range strings.Split(strings.Join(lines, ","), ",") {
			if item = strings.Trim(item, " \t"); item != "" {
				out = append(out, item)
			}
		}
		return out
	}
	hops, protos := split(xff), split(xfp)
	if len(hops) > MaxHops {
		return Result{}, ErrTooManyHops
	}
	chosen := -1
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHostPort(hops[i], false)
		if !ok {
			return Result{}, ErrMalformed
		}
		res.Client, chosen = a, i
		if !trusted.Contains(a) {
			break
		}
	}
	var raw string
	switch {
	case len(protos) == 0:
		return res, nil
	case len(protos) == 1:
		raw = protos[0]
	case len(protos) == len(hops):
		raw = protos[chosen]
	default:
		raw = protos[len(protos)-1]
	}
	switch strings.ToLower(raw) {
	case "http", "https", "ws", "wss":
		res.Proto = strings.ToLower(raw)
		return res, nil
	}
	return Result{}, ErrInvalidProto
}

func FuzzResolveXFF(f *testing.F) {
	for _, cases := range [][]resolveCase{xffCases, untrustedCases} {
		for _, c := range cases {
			if len(c.fwd) != 0 {
				continue
			}
			l1, l2 := seedLines(c.xff)
			f.Add(c.remote, l1, l2, strings.Join(c.xfp, ","))
		}
	}
	f.Add("10.0.0.1", "[2001:db8::1]:80, ::ffff:10.0.0.2", "10.0.0.3:1", "http, WSS, https")
	trusted := testTrusted(f) // seeds pick a trusted or untrusted peer through remote

	f.Fuzz(func(t *testing.T, remoteS, xff1, xff2, xfp string) {
		remote, err := netip.ParseAddr(remoteS)
		if err != nil {
			return
		}
		xff := fuzzLines(xff1, xff2)
		h := http.Header{"X-Forwarded-For": xff, "X-Real-Ip": {xff1}}
		var xfpLines []string
		if xfp != "" {
			xfpLines = []string{xfp}
			h["X-Forwarded-Proto"] = xfpLines
		}
		res, err := Resolve(remote, h, trusted, XForwardedFor)
		checkInvariants(t, remote, trusted, res, err)
		if !trusted.Contains(remote) {
			return
		}
		want, wantErr := referenceXFF(remote.Unmap().WithZone(""), xff, xfpLines, trusted)
		if res != want || (err == nil) != (wantErr == nil) || (err != nil && !errors.Is(err, wantErr)) {
			t.Fatalf("Resolve() = %+v, %v; reference = %+v, %v", res, err, want, wantErr)
		}
	})
}

// referenceSingle is a plain model of the single-address header rules.
func referenceSingle(remote netip.Addr, lines, xfp []string) (Result, error) {
	res := Result{Client: remote, ViaProxy: true}
	size := 0
	for _, l := range append(append([]string(nil), lines...), xfp...) {
		size += len(l) + 1
	}
	if size > MaxHeaderBytes {
		return Result{}, ErrHeaderTooLarge
	}
	switch len(lines) {
	case 0:
	case 1:
		v := strings.Trim(lines[0], " \t")
		if strings.Contains(v, ",") {
			return Result{}, ErrMalformed
		}
		a, ok := parseHostPort(v, false)
		if !ok {
			return Result{}, ErrMalformed
		}
		res.Client = a
	default:
		return Result{}, ErrMalformed
	}
	var protos []string
	for _, item := range strings.Split(strings.Join(xfp, ","), ",") {
		if item = strings.Trim(item, " \t"); item != "" {
			protos = append(protos, item)
		}
	}
	if len(protos) == 0 {
		return res, nil
	}
	switch raw := strings.ToLower(protos[len(protos)-1]); raw {
	case "http", "https", "ws", "wss":
		res.Proto = raw
		return res, nil
	}
	return Result{}, ErrInvalidProto
}

func FuzzResolveSingle(f *testing.F) {
	for _, c := range append(append([]resolveCase(nil), singleCases...), untrustedCases...) {
		f.Add(c.remote, c.realIP, "", strings.Join(c.xfp, ","), strings.Join(c.fwd, ","), strings.Join(c.xff, ","))
	}
	f.Add("10.0.0.1", "198.51.100.1", "198.51.100.2", "https", "for=6.6.6.6;proto=https", "6.6.6.7")
	f.Add("10.0.0.1", "[::ffff:198.51.100.1]:80", "", " WS ,", "", "")
	trusted := testTrusted(f)

	f.Fuzz(func(t *testing.T, remoteS, ip1, ip2, xfp, fwd, xff string) {
		remote, err := netip.ParseAddr(remoteS)
		if err != nil {
			return
		}
		h := http.Header{}
		var lines, xfpLines []string
		if ip1 != "" {
			lines = append(lines, ip1)
		}
		if ip2 != "" {
			lines = append(lines, ip2)
		}
		if lines != nil {
			h["X-Real-Ip"] = lines
		}
		if xfp != "" {
			xfpLines = []string{xfp}
			h["X-Forwarded-Proto"] = xfpLines
		}
		if fwd != "" {
			h["Forwarded"] = []string{fwd}
		}
		if xff != "" {
			h["X-Forwarded-For"] = []string{xff}
		}
		res, err := Resolve(remote, h, trusted, realIP)
		checkInvariants(t, remote, trusted, res, err)
		if !trusted.Contains(remote) {
			return
		}
		want, wantErr := referenceSingle(remote.Unmap().WithZone(""), lines, xfpLines)
		if res != want || (err == nil) != (wantErr == nil) || (err != nil && !errors.Is(err, wantErr)) {
			t.Fatalf("Resolve() = %+v, %v; reference = %+v, %v", res, err, want, wantErr)
		}
	})
}

func FuzzParseSource(f *testing.F) {
	for _, n := range append(append([]string(nil), SourceNames...), "", "x-real-ip", "X-Forwarded-Proto", "X Real", "Host") {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s, err := ParseSource(name)
		if err != nil {
			if !errors.Is(err, ErrInvalidSource) {
				t.Fatalf("ParseSource(%q) error %v wraps no ErrInvalidSource", name, err)
			}
			return
		}
		if !strings.EqualFold(s.String(), name) {
			t.Fatalf("ParseSource(%q) = %s", name, s)
		}
		if s2, err := ParseSource(s.String()); err != nil || s2 != s {
			t.Fatalf("ParseSource(%q) round trip = %v, %v", s.String(), s2, err)
		}
	})
}
