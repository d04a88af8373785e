package jwks

import "errors"

// The sentinel errors. Every error returned by this package wraps at least
// one of them (a failed request also wraps the transport's error, so
// errors.Is(err, context.DeadlineExceeded) works); test with errors.Is.
var (
	// ErrInvalidOptions reports an Options value that New cannot use
	// (a negative duration or size, a nil context).
	ErrInvalidOptions = errors.New("jwks: invalid options")

	// ErrInvalidURL reports a JWKS URL that does not parse, is not absolute,
	// has a scheme other than https or http, or carries userinfo or a
	// fragment.
	ErrInvalidURL = errors.New("jwks: invalid URL")

	// ErrInsecureURL reports an http URL whose host is not "localhost" or a
	// loopback IP literal. Keys fetched in clear text could be replaced by
	// anyone on the path.
	ErrInsecureURL = errors.New("jwks: URL must use https (http only for a loopback host)")

	// ErrFetch reports a request that did not produce a response: the
	// connection failed, the TLS handshake failed, the request timed out or
	// its context was cancelled.
	ErrFetch = errors.New("jwks: fetch failed")

	// ErrRedirect reports a redirect to another scheme or host, a redirect
	// carrying userinfo, or too many redirects.
	ErrRedirect = errors.New("jwks: redirect refused")

	// ErrStatus reports a response status other than 200 OK.
	ErrStatus = errors.New("jwks: unexpected HTTP status")

	// ErrBodyTooLarge reports a response body longer than Options.MaxBody.
	ErrBodyTooLarge = errors.New("jwks: response body too large")

	// ErrMalformed reports a body that is not a JSON object with a "keys"
	// array of objects, or that jwk.Parse refuses in strict mode: an
	// unknown key type, missing members, or invalid material (an EC point
	// off its curve, an RSA modulus shorter than 2048 bits).
	ErrMalformed = errors.New("jwks: malformed JWK set")

	// ErrEmptySet reports a JWK set with no keys.
	ErrEmptySet = errors.New("jwks: empty JWK set")

	// ErrPrivateKey reports a key carrying private material ("d", "p", "q",
	// "dp", "dq", "qi", "oth"). A JWKS must hold public keys only; a server
	// that publishes private keys is misconfigured and its keys are
	// compromised.
	ErrPrivateKey = errors.New("jwks: JWK set contains a private key")

	// ErrSymmetricKey reports an "oct" key (or a "k" member). A shared
	// secret published at a URL is no secret.
	ErrSymmetricKey = errors.New("jwks: JWK set contains a symmetric key")

	// ErrUnusableKey reports a key that jwk.Parse accepted but that is not
	// an asymmetric key, fails its Validate method, or cannot be exported
	// to a crypto key.
	ErrUnusableKey = errors.New("jwks: JWK set contains an unusable key")

	// ErrDiscovery reports an OpenID Provider configuration document that
	// could not be fetched or used: a failed request, a status other than
	// 200, a body over 256 KiB, not a JSON object, or a missing issuer or
	// jwks_uri, or a jwks_uri that ValidateURL refuses. It wraps the more
	// specific error (ErrFetch, ErrStatus, ErrInvalidURL, …) when there is
	// one.
	ErrDiscovery = errors.New("jwks: OpenID Provider configuration refused")

	// ErrIssuerMismatch reports a configuration document whose "issuer" is
	// not exactly the configured issuer (OpenID Connect Discovery §4.3):
	// keys served for another issuer must not verify this one's tokens.
	ErrIssuerMismatch = errors.New("jwks: the OpenID Provider configuration names another issuer")

	// ErrClosed reports a call on a Fetcher after Close.
	ErrClosed = errors.New("jwks: fetcher closed")
)
