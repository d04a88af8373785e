package jwtpre

// BearerPrefix is the prefix of the Sec-WebSocket-Protocol entry that
// carries a token: "bearer.<token>". FromSubprotocols matches it ignoring
// ASCII case, so that no spelling of it is ever mistaken for an
// application subprotocol.
const BearerPrefix = "bearer."

// FromAuthorization returns the token of an Authorization header value of
// the form "Bearer <token>" (RFC 6750 §2.1). The scheme is matched ignoring
// ASCII case and is followed by one or more spaces; the token must be
// non-empty token68 (RFC 7235 §2.1: letters, digits, "-._~+/", then
// optional trailing "="), and nothing may follow it. Otherwise ok is
// false. The token is a substring of v.
func FromAuthorization(v string) (token string, ok bool) {
	const scheme = "bearer"
	if len(v) < len(scheme)+2 || !asciiEqualFold([]byte(v[:len(scheme)]), scheme) || v[len(scheme)] != ' ' {
		return "", false
	}
	i := len(scheme) + 1
	for i < len(v) && v[i] == ' ' {
		i++
	}
	token = v[i:]
	if !isToken68(token) {
		return "", false
	}
	return token, true
}

// isToken68 reports whether s matches 1*( ALPHA / DIGIT / "-" / "." / "_" /
// "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	i := 0
	for i < len(s) && isToken68Char(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

func isToken68Char(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '+', '/':
		return true
	}
	return false
}

// isTchar reports whether c is an RFC 7230 §3.2.6 token character.
func isTchar(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// FromSubprotocols reads Sec-WebSocket-Protocol header values (each a
// comma-separated list; a request may carry several header lines) and
// returns the token of the one entry "bearer.<token>" (prefix matched
// ignoring ASCII case), with the other entries in the order offered.
//
// Entries are trimmed of spaces and tabs; empty list elements are ignored
// (RFC 7230 §7). Every entry must be an RFC 7230 token (ErrSubprotocol); the
// characters of a JWT, [A-Za-z0-9_.-], all are. A bearer entry with an
// empty token is ErrSubprotocol, two bearer entries are ErrMultipleTokens.
// With no bearer entry, token is "" and err is nil. The strings returned are
// substrings of values; the token is never among others.
func FromSubprotocols(values []string) (token string, others []string, err error) {
	n := 0
	for _, v := range values {
		for rest := v; rest != ""; {
			var e string
			e, rest = nextElement(rest)
			if e == "" {
				continue
			}
			for i := 0; i < len(e); i++ {
				if !isTchar(e[i]) {
					return "", nil, errSubprotoToken
				}
			}
			if !isBearer(e) {
				n++
				continue
			}
			if len(e) == len(BearerPrefix) {
				return "", nil, errSubprotoBearer
			}
			if token != "" {
				return "", nil, ErrMultipleTokens
			}
			token = e[len(BearerPrefix):]
		}
	}
	if n == 0 {
		return token, nil, nil
	}
	others = make([]string, 0, n)
	for _, v := range values {
		for rest := v; rest != ""; {
			var e string
			e, rest = nextElement(rest)
			if e != "" && !isBearer(e) {
				others = append(others, e)
			}
		}
	}
	return token, others, nil
}

// nextElement splits the first comma-separated element off a list and trims
// it of optional whitespace.
func nextElement(list string) (elem, rest string) {
	i := 0
	for i < len(list) && list[i] != ',' {
		i++
	}
	elem = list[:i]
	if i < len(list) {
		rest = list[i+1:]
	}
	for elem != "" && (elem[0] == ' ' || elem[0] == '\t') {
		elem = elem[1:]
	}
	for elem != "" && (elem[len(elem)-1] == ' ' || elem[len(elem)-1] == '\t') {
		elem = elem[:len(elem)-1]
	}
	return elem, rest
}

func isBearer(e string) bool {
	return len(e) >= len(BearerPrefix) && asciiEqualFold([]byte(e[:len(BearerPrefix)]), BearerPrefix)
}
