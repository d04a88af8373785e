package clientip

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of
// them; test with [errors.Is].
var (
	// ErrInvalidCIDR reports a trusted-proxy entry that is neither a CIDR
	// prefix nor a bare IP address.
	ErrInvalidCIDR = errors.New("clientip: invalid trusted proxy entry")

	// ErrInvalidRemoteAddr reports a peer address that cannot be parsed
	// (for example the RemoteAddr of a Unix-socket request) or is not valid.
	ErrInvalidRemoteAddr = errors.New("clientip: invalid remote address")

	// ErrMalformed reports forwarding headers from a trusted proxy that are
	// not well formed, or a client hop whose address cannot be parsed.
	ErrMalformed = errors.New("clientip: malformed forwarding header")

	// ErrUnknownClient reports a chain whose client hop is "unknown",
	// obfuscated, or lacks a for= parameter: the client cannot be identified.
	ErrUnknownClient = errors.New("clientip: client address not disclosed by proxy")

	// ErrInvalidProto reports a proto asserted by a trusted proxy that is not
	// one of http, https, ws or wss.
	ErrInvalidProto = errors.New("clientip: unsupported forwarded proto")

	// ErrTooManyHops reports a chain longer than MaxHops.
	ErrTooManyHops = errors.New("clientip: too many forwarding hops")

	// ErrInvalidSource reports a header name that ParseSource does not
	// know as a forwarding header.
	ErrInvalidSource = errors.New("clientip: not a client address header")

	// ErrHeaderTooLarge reports forwarding headers longer than MaxHeaderBytes.
	ErrHeaderTooLarge = errors.New("clientip: forwarding headers too large")
)
