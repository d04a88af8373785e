package origin

import "errors"

// MaxLength is the longest pattern or origin accepted, in bytes.
const MaxLength = 2048

// Errors returned by [ParsePattern] and [ParseOrigin]. Each message is
// distinct, has no prefix and does not echo the input: callers wrap it with
// their own context. Compare with [errors.Is].
var (
	// ErrEmpty reports an empty pattern or origin.
	ErrEmpty = errors.New("empty")
	// ErrTooLong reports input longer than MaxLength bytes.
	ErrTooLong = errors.New("longer than 2048 bytes")
	// ErrNull reports the opaque origin "null" (sandboxed frames, file: pages, redirects).
	ErrNull = errors.New(`opaque origin "null" cannot be allowed`)
	// ErrBareWildcard reports the pattern "*", which would allow every origin.
	ErrBareWildcard = errors.New(`bare "*" is not allowed: list each origin, or use a wildcard such as "https://*.example.com"`)
	// ErrInvalidUTF8 reports a pattern that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("not valid UTF-8")
	// ErrNonASCII reports an origin with a non-ASCII byte (browsers send hosts in punycode).
	ErrNonASCII = errors.New("non-ASCII byte in origin (browsers send punycode hosts)")
	// ErrSpace reports whitespace or a control character anywhere in the input.
	ErrSpace = errors.New("contains whitespace or a control character")
	// ErrNoScheme reports input without "scheme://".
	ErrNoScheme = errors.New(`missing "scheme://": write "https://host[:port]"`)
	// ErrScheme reports a scheme other than http or https.
	ErrScheme = errors.New(`scheme must be "http" or "https"`)
	// ErrPath reports a path (even "/") or a backslash after the host.
	ErrPath = errors.New(`has a path: write "scheme://host[:port]" with nothing after the host, not even "/"`)
	// ErrQuery reports a query ("?").
	ErrQuery = errors.New(`has a query ("?")`)
	// ErrFragment reports a fragment ("#").
	ErrFragment = errors.New(`has a fragment ("#")`)
	// ErrUserinfo reports userinfo ("user@host").
	ErrUserinfo = errors.New(`has userinfo ("user@")`)
	// ErrEmptyHost reports a missing host.
	ErrEmptyHost = errors.New("empty host")
	// ErrEmptyPort reports a ":" with no port after it.
	ErrEmptyPort = errors.New(`empty port after ":"`)
	// ErrPort reports a port that is not a decimal number from 1 to 65535 without leading zeros.
	ErrPort = errors.New("port must be a decimal number from 1 to 65535 without leading zeros")
	// ErrHostTooLong reports a host longer than 253 bytes (after punycode encoding).
	ErrHostTooLong = errors.New("host longer than 253 bytes")
	// ErrTrailingDot reports a host ending in ".".
	ErrTrailingDot = errors.New(`host ends with "." (write it without the trailing dot)`)
	// ErrEmptyLabel reports an empty host label (a leading dot or "..").
	ErrEmptyLabel = errors.New(`host has an empty label (leading "." or "..")`)
	// ErrLabelTooLong reports a host label longer than 63 bytes (after punycode encoding).
	ErrLabelTooLong = errors.New("host label longer than 63 bytes")
	// ErrHostChar reports a host byte other than a letter, digit, hyphen or dot.
	ErrHostChar = errors.New("host has a character other than a letter, digit, hyphen or dot")
	// ErrLabelHyphen reports a host label that starts or ends with a hyphen.
	ErrLabelHyphen = errors.New("host label starts or ends with a hyphen")
	// ErrNumericHost reports a host whose last label is numeric but which is not a dotted-decimal IPv4 address.
	ErrNumericHost = errors.New("host ends in a numeric label but is not a dotted-decimal IPv4 address")
	// ErrIDN reports a non-ASCII rune in a pattern host that is not a letter, mark or number.
	ErrIDN = errors.New("host has a non-ASCII character that is not a letter, mark or number")
	// ErrIPv6 reports an invalid IPv6 literal between brackets.
	ErrIPv6 = errors.New("invalid IPv6 address between brackets")
	// ErrIPv6Zone reports an IPv6 literal with a zone ("%eth0").
	ErrIPv6Zone = errors.New("IPv6 zone is not allowed")
	// ErrUnbracketedIPv6 reports a host with several colons outside brackets.
	ErrUnbracketedIPv6 = errors.New(`IPv6 address must be in brackets: "http://[::1]:8080"`)
	// ErrBracket reports a misplaced or unbalanced "[" or "]".
	ErrBracket = errors.New(`misplaced or unbalanced "[" or "]"`)
	// ErrWildcardPosition reports a "*" that is not the whole left-most label.
	ErrWildcardPosition = errors.New(`wildcard "*" is allowed only as the whole left-most label, as in "https://*.example.com"`)
	// ErrWildcardTwice reports more than one wildcard label.
	ErrWildcardTwice = errors.New(`only one wildcard label "*." is allowed`)
	// ErrWildcardBroad reports a wildcard followed by fewer than two labels.
	ErrWildcardBroad = errors.New(`wildcard must be followed by at least two labels, as in "https://*.example.com"`)
	// ErrWildcardIP reports a wildcard combined with an IP address.
	ErrWildcardIP = errors.New("wildcard cannot be combined with an IP address")
	// errPunycodeOverflow reports an encoder overflow; unreachable for labels of at most 63 runes.
	errPunycodeOverflow = errors.New("punycode overflow")
)
