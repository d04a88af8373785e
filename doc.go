// Package wssec makes a WebSocket endpoint safe by default.
//
// A Guard wraps net/http handlers. Every WebSocket upgrade passes through
// its guards, cheapest first — transport (TLS), client IP behind trusted
// proxies, Origin allowlist, handshake rate, connection quotas, token
// verification — and a refused handshake gets a plain HTTP answer, never
// an upgrade. The handler receives a *Conn whose every message is size
// capped, rate limited, parsed as a strict envelope, validated against the
// schema registered for its action, checked against channel rules and
// authorized again by a Policy before ReadMessage returns it.
//
//	g, err := wssec.New(
//		wssec.WithOrigins("https://app.example.com"),
//		wssec.WithOIDC("https://auth.example.com"),
//	)
//	if err != nil { … }
//	defer g.Close()
//	http.Handle("/ws", g.Handler(func(ctx context.Context, c *wssec.Conn) {
//		for {
//			m, err := c.ReadMessage(ctx)
//			if err != nil { return }
//			…
//		}
//	}))
//
// # Security considerations
//
// With no options beyond a key, a Guard requires TLS, admits same-origin
// browsers only, refuses a missing or "null" Origin, requires a signed,
// unexpired token with exp no more than 15 minutes after iat, and applies
// every limit (32 connections per IP, 8 per subject, 10 000 in total, 5
// handshakes per second per IP with a burst of 20, 32 KiB messages, 20
// messages per second). Each relaxation is a loudly named option, and New
// logs a warning for the dangerous ones.
//
// Forwarding headers are ignored unless the peer is inside
// WithTrustedProxies. From a trusted proxy only the header named by
// WithClientIPHeader is read (X-Forwarded-For with X-Forwarded-Proto by
// default; Forwarded only when named); the client is the right-most
// address in it that is not a trusted proxy. Over plain ws://, a
// same-origin handshake needs an IP literal or "localhost" as Host unless
// WithHosts lists the names served (DNS rebinding).
//
// Token algorithms come from the keys: an RSA or EC public key never
// verifies an HMAC token, "none" is never accepted, and tokens that embed
// or point to keys (jwk, jku, x5u, x5c headers) or carry crit are refused
// before any cryptography runs. WithOIDC accepts a discovery document
// only when it names exactly the configured issuer and always checks iss;
// WithJWKS without WithIssuer accepts every issuer that shares the key set
// (all Entra ID tenants share Microsoft's). A 401 says which check failed
// in one fixed sentence (error_description), never echoing the token or
// a claim.
//
// Every message of a registered action must name a channel, which the
// channel rules then authorize (no rule matching denies); only an action
// registered with ChannelFree may omit it, and is then authorized by its
// RequireScope scopes and the Policy. Put r.Use(g.Wrap) and g.Handler
// together freely: a request is guarded once per Guard.
//
// Verified tokens are cached (at most 10 000 per Guard, until their exp,
// keyed by SHA-256, never stored raw), so a reconnect with the same token
// skips the signature check but not the time claims, revocation,
// single use, bans or quotas; a change of the JWKS invalidates the cache.
//
// With a shared Store (WithStore and the redisstore package), rates,
// quotas and bans fall back to each instance's own limits while the store
// is unreachable, but revocation checks, single-use tokens and tickets
// refuse (fail closed): a credential is never accepted unchecked.
//
// The Guard cannot see what happens before a request reaches it: set
// ReadHeaderTimeout and MaxHeaderBytes on your http.Server so a slow or
// huge header cannot tie up the server.
package wssec
