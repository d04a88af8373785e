// Package jwks fetches a JSON Web Key Set from one URL, or from the
// jwks_uri of an OpenID Provider's discovery document ([NewDiscovery]), and
// keeps it fresh, for the Guard's WithJWKS and WithOIDC options.
//
// It is a deliberately small replacement for jwk.Cache and httprc:
//
//   - [New] validates the URL without network access ([ValidateURL]), then
//     fetches once synchronously under a short timeout and fails if that
//     fetch fails, so a misconfigured Guard never starts (unless
//     [Options.StartWithoutSet], which retries in the background instead);
//   - a response must be 200 with a body of at most [Options.MaxBody] bytes
//     (read through an io.LimitReader, never truncated) holding a JSON
//     object with a non-empty "keys" array that jwk.Parse accepts in strict
//     mode;
//   - redirects are followed only to the same scheme and host, at most 3;
//   - one goroutine, started by New and stopped by [Fetcher.Close], refreshes
//     the set every [Options.RefreshInterval]; it is also the only place
//     where later fetches run, so fetches never overlap;
//   - a failed refresh keeps the last good set and reports to
//     [Options.OnError]; a good one replaces the set atomically, so a key
//     removed by the issuer stops verifying after the next refresh;
//   - [Fetcher.LookupKid] refetches once on an unknown kid, at once even
//     right after New, then at most once per [Options.MinRefetch], and
//     concurrent misses share that fetch;
//   - keys that can never verify a signature (encryption keys, encryption
//     algorithms, other key types or curves) are left out of the set and
//     reported once to [Options.OnSkipped], never fatal.
//
// # Security considerations
//
// The key set decides which tokens are authentic, so the fetcher fails
// closed. Plain http is refused unless the host is "localhost" or a
// loopback IP literal. URLs with userinfo or a fragment are refused. A set
// that holds a private key (any of "d", "p", "q", "dp", "dq", "qi", "oth"),
// a symmetric "oct" key, a signature key the JOSE library cannot parse, or a key
// whose material does not validate (an EC point off its curve, an RSA
// modulus under 2048 bits) is refused as a whole: it is a sign of a
// misconfigured or compromised issuer, and an attacker who can publish a
// symmetric key would otherwise be able to mint tokens.
//
// A discovery document must name exactly the configured issuer, and its
// jwks_uri passes the same URL rules; nothing else in it is used.
//
// Tokens are attacker controlled and so is their kid. A kid miss causes at
// most one request per MinRefetch, whatever the number of tokens, and a
// caller waits at most the client timeout for it.
//
// Set and LookupKid return shared values: callers must not modify the set
// or its keys.
package jwks
