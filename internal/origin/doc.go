// Package origin compiles origin allowlist patterns and matches the
// serialized origins (RFC 6454) that browsers send in the Origin header
// of a WebSocket handshake.
//
// Patterns are parsed once, at construction, into a scheme, a host and a
// port; matching never treats a pattern as a string prefix. A pattern is
// either an exact origin ("https://app.example.com", "http://127.0.0.1:8080",
// "http://[::1]:3000") or a wildcard whose "*." is the whole left-most label
// ("https://*.example.com"). A wildcard matches subdomains at any depth on a
// label boundary, never the bare suffix itself, and never an IP address.
//
// Canonical form, shared by [Pattern.String] and [Origin.String]: lowercase
// scheme and host, Unicode host labels in punycode ("xn--"), IPv6 literals
// in RFC 5952 form, and the default port (http 80, https 443) left out.
//
// Deliberate refusals (they fail closed):
//   - A host with a trailing dot ("https://example.com.") is refused in both
//     patterns and origins. It names the same DNS node, but browsers treat it
//     as a different origin, so folding it would merge two origins.
//   - Host labels must be letters, digits and hyphens (LDH), 1 to 63 bytes,
//     not starting or ending with a hyphen; the host is at most 253 bytes.
//     A host whose last label is numeric must be a dotted-decimal IPv4
//     address, as WHATWG URL parsing would read it as one.
//   - Origins are ASCII only (browsers send punycode) and at most
//     [MaxLength] bytes; "null", "file://" and any path, query, fragment or
//     userinfo are refused.
//
// Unicode pattern hosts are lowercased with [strings.ToLower], the dots
// U+3002, U+FF0E and U+FF61 are read as ".", and each non-ASCII label is
// encoded with the RFC 3492 punycode encoder in this package. Full UTS #46
// mapping and NFC normalization are not applied: write hosts in NFC, or give
// the "xn--" form directly. A non-ASCII rune must be a letter, mark or
// number.
//
// Matching an [Origin] produced by [ParseOrigin] against a [Set] does not
// allocate; neither does ParseOrigin for input that is already lowercase.
package origin
