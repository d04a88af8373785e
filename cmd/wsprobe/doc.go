// Command wsprobe checks a WebSocket endpoint from outside, the way an
// attacker would: any endpoint, wssec or not, directly or behind its
// proxy, with its real identity provider.
//
//	go run github.com/wssec/wssec/cmd/wsprobe -url wss://staging.example.com/ws \
//	    -origin https://app.example.com -token "$TOKEN" -i-own-this-target
//
// Each check sends real traffic, decides from what comes back, and
// reports pass, fail or n/a with one line of evidence:
//
//   - transport: ws:// accepted where wss:// exists, or with a client-sent
//     X-Forwarded-Proto or Forwarded proto=https; TLS 1.0 or 1.1, or a
//     CBC-SHA1 or 3DES suite, accepted.
//   - origin: a foreign Origin, "null", none, and look-alikes of -origin
//     (suffix and prefix, userinfo, case, trailing dot, other port, other
//     scheme). Any upgrade is a fail.
//   - token (with -token): alg none variants, the signature stripped or
//     flipped, kid injection, jwk and jku embedded keys, HS256 keyed with
//     the endpoint's public key (with -jwks), the token in the query
//     string, an expired token (with -expired-token). Any upgrade on a
//     forged token is a fail.
//   - forwarding: sockets from one address until the endpoint refuses,
//     then again with a different client-sent X-Forwarded-For, Forwarded,
//     X-Real-IP, True-Client-IP and CF-Connecting-IP on each. It passes
//     only when the second run is refused with an HTTP status after no
//     more sockets than the first (one more is allowed: a socket the probe
//     just closed may still be counted). More is a fail, whether the
//     second run then ended or met another limit (a total cap behind a
//     per-address limit that believes the headers); a second run cut
//     short by -budget or a network error is n/a.
//   - messages: an oversized message, a compression bomb (when
//     permessage-deflate is negotiated), a fragment flood, invalid UTF-8,
//     a 126-byte ping, a message flood. Each must end in a close (its code
//     is reported), not an answer.
//   - lifetime: an idle socket must get a ping or a close within -idle; a
//     reader that stalls must meet backpressure or a close, not replies
//     buffered without bound.
//
// The legitimate handshake (-origin and -token) must upgrade first;
// otherwise wsprobe stops with exit status 2. A refusal with 429 or 503
// is retried after its Retry-After, so a rate limit is not mistaken for
// a check that holds.
//
// Safety: wsprobe refuses a target whose host resolves to anything but
// loopback addresses unless -i-own-this-target is given. It resolves the
// host again for every connection and connects to the address it checked,
// so a DNS answer that changes during the run cannot move it elsewhere.
// (The -jwks document is fetched with one ordinary GET, not held to this
// rule.) Every flood is bounded in count (-flood-count, -max-sockets),
// bytes (-max-message, -slow-read-bytes) and time (-budget). The report
// shows the target and the -jwks URL without userinfo, query or fragment,
// so a token or key carried in them does not reach a CI log.
//
// # Flags
//
//	-url URL              the endpoint, ws:// or wss:// (required)
//	-plain-url URL        the ws:// twin to try (default: ws:// on port 80 when -url is wss:// on 443)
//	-origin ORIGIN        the legitimate page origin (default: the URL's own, https for wss)
//	-token TOKEN          a valid token; the token checks are n/a without it
//	-token-file FILE      valid tokens of other users, one a line: the forwarding check takes
//	                      -token and these in turn, so a per-user limit does not bite first
//	-token-in WHERE       header (Authorization: Bearer, the default), subprotocol (bearer.TOKEN),
//	                      cookie:NAME or query:NAME
//	-expired-token TOKEN  a token past its exp, which must be refused
//	-jwks URL             the endpoint's JWKS, for HS256 keyed with its public key
//	-subprotocol LIST     subprotocols to offer on every handshake, comma-separated
//	-H "Name: value"      a header for every handshake (repeatable)
//	-message TEXT         a message the endpoint answers, for the flood and slow-reader checks
//	                      (default {"action":"ping","id":"wsprobe"})
//	-max-message BYTES    the largest message the endpoint should accept (default 1048576)
//	-max-sockets N        sockets held at once by the forwarding check (default 64)
//	-flood-count N        messages in the message flood (default 2000)
//	-slow-read-bytes N    bytes the slow-reader check writes (default 100663296); more than half
//	                      of that coming back is a fail
//	-idle DURATION        how long an idle socket waits for a ping or close; 0 skips (default 60s)
//	-budget DURATION      the whole run's time bound (default 3m)
//	-source IP            the local address to connect from
//	-ca FILE              PEM certificates to trust for wss:// (default: the system roots)
//	-insecure             do not verify the certificate
//	-skip LIST            groups not to run, comma-separated: transport, origin, token,
//	                      forwarding, messages, lifetime
//	-i-own-this-target    allow a target that is not loopback
//	-json                 print the report as JSON instead of a table
//
// Exit status: 0 when no check failed, 1 when one did, 2 when the probe
// could not run (bad flags, a target that is not loopback, a refused
// legitimate handshake).
package main
