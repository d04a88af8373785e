package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxDiscoveryBody caps an OpenID Provider's configuration document. Real
// ones are a few KiB.
const maxDiscoveryBody = 256 << 10

// discoveryPath is appended to the issuer (OpenID Connect Discovery 1.0 §4).
const discoveryPath = "/.well-known/openid-configuration"

// ValidateIssuer reports whether raw is acceptable as an OpenID Provider's
// issuer, without any network access: the rules of ValidateURL, and no
// query (Discovery §3: the issuer has no query or fragment component).
// The error never contains the URL.
func ValidateIssuer(raw string) error {
	u, err := parseURL(raw)
	if err != nil {
		return err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("%w: an issuer has no query", ErrInvalidURL)
	}
	return nil
}

// discover reads the issuer's configuration document and returns its
// jwks_uri, after checking that the document names exactly f.issuer.
func (f *Fetcher) discover(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	u := strings.TrimSuffix(f.issuer, "/") + discoveryPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrDiscovery, redactErr(err))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrRedirect) {
			return "", fmt.Errorf("%w: %w", ErrDiscovery, redactErr(err))
		}
		return "", fmt.Errorf("%w: %w: %w", ErrDiscovery, ErrFetch, redactErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: %w: %d", ErrDiscovery, ErrStatus, resp.StatusCode)
	}
	if resp.ContentLength > maxDiscoveryBody {
		return "", fmt.Errorf("%w: %w: over %d bytes", ErrDiscovery, ErrBodyTooLarge, maxDiscoveryBody)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBody+1))
	if err != nil {
		return "", fmt.Errorf("%w: %w: reading body: %w", ErrDiscovery, ErrFetch, redactErr(err))
	}
	if len(body) > maxDiscoveryBody {
		return "", fmt.Errorf("%w: %w: over %d bytes", ErrDiscovery, ErrBodyTooLarge, maxDiscoveryBody)
	}
	return parseDiscovery(body, f.issuer)
}

// parseDiscovery checks a configuration document against issuer and
// returns its jwks_uri. Errors never quote the document's values: they
// are not ours, and a jwks_uri may carry a secret in its query.
func parseDiscovery(body []byte, issuer string) (string, error) {
	var doc struct {
		Issuer  *string `json:"issuer"`
		JWKSURI *string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("%w: not a JSON object with string issuer and jwks_uri", ErrDiscovery)
	}
	if doc.Issuer == nil {
		return "", fmt.Errorf("%w: no issuer", ErrDiscovery)
	}
	// Exactly: no trailing-slash, case or host-spelling leniency (§4.3).
	if *doc.Issuer != issuer {
		return "", ErrIssuerMismatch
	}
	if doc.JWKSURI == nil || *doc.JWKSURI == "" {
		return "", fmt.Errorf("%w: no jwks_uri", ErrDiscovery)
	}
	if err := ValidateURL(*doc.JWKSURI); err != nil {
		return "", fmt.Errorf("%w: jwks_uri: %w", ErrDiscovery, err)
	}
	return *doc.JWKSURI, nil
}
