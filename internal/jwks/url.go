package jwks

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// maxRedirects is the number of same-origin redirects a fetch follows.
const maxRedirects = 3

// ValidateURL reports whether raw is acceptable as a JWKS URL, without any
// network access: an absolute https URL, or an http URL whose host is
// "localhost" or a loopback IP literal (a local sidecar, tests); no
// userinfo and no fragment. The error wraps ErrInvalidURL or
// ErrInsecureURL and never contains the URL itself.
func ValidateURL(raw string) error {
	_, err := parseURL(raw)
	return err
}

func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidURL)
	}
	// url.Parse drops an empty fragment ("…/jwks#"), so look at the text.
	if strings.IndexByte(raw, '#') >= 0 {
		return nil, fmt.Errorf("%w: fragment not allowed", ErrInvalidURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: userinfo not allowed", ErrInvalidURL)
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: must be absolute with a host", ErrInvalidURL)
	}
	switch u.Scheme { // url.Parse lower-cases the scheme
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return nil, ErrInsecureURL
		}
	default:
		return nil, fmt.Errorf("%w: scheme must be https or http", ErrInvalidURL)
	}
	return u, nil
}

// isLoopbackHost reports whether host (without port or brackets) is
// "localhost" or a loopback IP literal. Names that merely resolve to a
// loopback address do not count: resolution is not ours to trust.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return false
	}
	return a.IsLoopback() // also true for ::ffff:127.0.0.0/104
}

// redirectPolicy returns a CheckRedirect function that refuses a redirect
// to another scheme or host (port included) than the original request, a
// redirect carrying userinfo and more than maxRedirects redirects, then
// defers to next, if any.
func redirectPolicy(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		orig := via[0].URL
		if req.URL.Scheme != orig.Scheme || !strings.EqualFold(req.URL.Host, orig.Host) {
			return fmt.Errorf("%w: to another scheme or host", ErrRedirect)
		}
		if req.URL.User != nil {
			return fmt.Errorf("%w: userinfo in location", ErrRedirect)
		}
		if len(via) > maxRedirects {
			return fmt.Errorf("%w: more than %d redirects", ErrRedirect, maxRedirects)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
}

// Redact returns raw without its userinfo, query and fragment: what may
// appear in an error or a log. A URL that does not parse gives
// "(unparseable URL)".
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparseable URL)"
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// redactErr returns err with the URL of a *url.Error at its top redacted,
// keeping its Op and its cause (so errors.Is and Timeout still work).
// net/http returns such an error from Client.Do, naming the request's
// URL, or the location of a refused redirect.
func redactErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: Redact(ue.URL), Err: ue.Err}
	}
	return err
}
