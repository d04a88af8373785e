package jwtpre

import "errors"

// The sentinel errors. Every error returned by this package wraps exactly
// one of them; test with errors.Is. Messages never contain the token.
var (
	// ErrTooLarge reports a token longer than Policy.MaxSize.
	ErrTooLarge = errors.New("jwtpre: token too large")
	// ErrMalformed reports an empty token, a segment count other than
	// three, or an empty header, payload or signature segment.
	ErrMalformed = errors.New("jwtpre: malformed token")
	// ErrBadEncoding reports a segment that is not canonical unpadded
	// base64url.
	ErrBadEncoding = errors.New("jwtpre: bad base64url encoding")
	// ErrHeader reports a protected header that is too large or not a
	// strict JSON object, a missing or non-string "alg", a malformed
	// "kid", or an unacceptable "typ".
	ErrHeader = errors.New("jwtpre: bad header")
	// ErrAlgNone reports "alg":"none" in any letter case.
	ErrAlgNone = errors.New(`jwtpre: alg "none" refused`)
	// ErrAlgNotAllowed reports an "alg" that is not in Policy.Algs.
	ErrAlgNotAllowed = errors.New("jwtpre: alg not allowed")
	// ErrCrit reports a "crit" or "b64" header parameter: no extension is
	// understood.
	ErrCrit = errors.New("jwtpre: critical header extension refused")
	// ErrEmbeddedKey reports a "jwk", "jku", "x5u" or "x5c" header
	// parameter: the key must come from the server, never from the token.
	ErrEmbeddedKey = errors.New("jwtpre: embedded or remote key refused")
	// ErrUnknownKid reports a "kid" that Policy.Kids does not know, or a
	// missing "kid" when Policy.RequireKid is set.
	ErrUnknownKid = errors.New("jwtpre: unknown kid")
	// ErrSubprotocol reports a Sec-WebSocket-Protocol value that is not a
	// comma-separated list of tokens, or a "bearer." entry with no token.
	ErrSubprotocol = errors.New("jwtpre: malformed Sec-WebSocket-Protocol")
	// ErrMultipleTokens reports more than one "bearer." entry in
	// Sec-WebSocket-Protocol.
	ErrMultipleTokens = errors.New("jwtpre: more than one bearer token offered")
)

// detailError is a refusal with a more precise message. All values are
// package-level, so returning one allocates nothing.
type detailError struct {
	kind error
	msg  string
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.kind }

func detail(kind error, what string) error {
	return &detailError{kind: kind, msg: kind.Error() + ": " + what}
}

// Refusals with details. Each wraps one sentinel.
var (
	errEmpty          = detail(ErrMalformed, "empty token")
	errOneSegment     = detail(ErrMalformed, "one segment, want three")
	errTwoSegments    = detail(ErrMalformed, "two segments, want three")
	errManySegments   = detail(ErrMalformed, "more than three segments")
	errEmptyHeader    = detail(ErrMalformed, "empty header segment")
	errEmptyPayload   = detail(ErrMalformed, "empty payload segment")
	errEmptySignature = detail(ErrMalformed, "empty signature segment")

	errPadding      = detail(ErrBadEncoding, "padding")
	errWhitespace   = detail(ErrBadEncoding, "whitespace")
	errAlphabet     = detail(ErrBadEncoding, "character outside the base64url alphabet")
	errLength       = detail(ErrBadEncoding, "impossible segment length")
	errNonCanonical = detail(ErrBadEncoding, "non-canonical last character")

	errHeaderTooLarge = detail(ErrHeader, "header too large")
	errSyntax         = detail(ErrHeader, "invalid JSON")
	errNotObject      = detail(ErrHeader, "not a JSON object")
	errNumberRange    = detail(ErrHeader, "number out of range")
	errDuplicate      = detail(ErrHeader, "duplicate member name")
	errUTF8           = detail(ErrHeader, "invalid UTF-8")
	errSurrogate      = detail(ErrHeader, "lone surrogate escape")
	errDepth          = detail(ErrHeader, "nesting too deep")
	errMembers        = detail(ErrHeader, "too many members")
	errFolded         = detail(ErrHeader, "member name is a case variant of a registered parameter")
	errAlgMissing     = detail(ErrHeader, "alg missing")
	errAlgType        = detail(ErrHeader, "alg not a string")
	errKidType        = detail(ErrHeader, "kid not a string")
	errKidShape       = detail(ErrHeader, "kid not 1 to 256 bytes of printable ASCII")
	errTypType        = detail(ErrHeader, "typ not a string")
	errTyp            = detail(ErrHeader, "typ not JWT or at+jwt")

	errB64 = detail(ErrCrit, "b64")

	errJWK = detail(ErrEmbeddedKey, "jwk")
	errJKU = detail(ErrEmbeddedKey, "jku")
	errX5U = detail(ErrEmbeddedKey, "x5u")
	errX5C = detail(ErrEmbeddedKey, "x5c")

	errKidMissing = detail(ErrUnknownKid, "kid required")

	errSubprotoToken  = detail(ErrSubprotocol, "entry is not a token")
	errSubprotoBearer = detail(ErrSubprotocol, "empty bearer token")
)
