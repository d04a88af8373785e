package redisstore

import (
	"fmt"
	"strings"
	"time"
)

// Defaults of the options.
const (
	// DefaultPrefix is the key prefix and hash tag when WithPrefix is not
	// given.
	DefaultPrefix = "wssec"
	// DefaultLeaseTTL is the connection lease lifetime when WithLeaseTTL is
	// not given.
	DefaultLeaseTTL = 30 * time.Second
	// DefaultTimeout bounds each Redis operation when WithTimeout is not
	// given.
	DefaultTimeout = 500 * time.Millisecond
	// DefaultMirrorCapacity bounds each local mirror when
	// WithMirrorCapacity is not given.
	DefaultMirrorCapacity = 100_000
)

// Option configures a Store. Options never fail: New validates the
// applied configuration once and reports every problem together.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is the applied configuration of a Store.
type config struct {
	prefix         string
	leaseTTL       time.Duration
	timeout        time.Duration
	mirrorCapacity int
}

func defaultConfig() config {
	return config{
		prefix:         DefaultPrefix,
		leaseTTL:       DefaultLeaseTTL,
		timeout:        DefaultTimeout,
		mirrorCapacity: DefaultMirrorCapacity,
	}
}

// WithPrefix sets the prefix of every key and of the notices channel.
// Default "wssec". It must be non-empty and must not contain '{' or '}':
// the prefix is also the Redis Cluster hash tag that keeps every key of
// the Store on one slot (see the package documentation). Give each
// service sharing one Redis its own prefix. A later call replaces an
// earlier one.
func WithPrefix(prefix string) Option {
	return optionFunc(func(c *config) { c.prefix = prefix })
}

// WithLeaseTTL sets how long a connection lease lives without renewal.
// Default 30 s. Held leases are renewed every ttl/3, so a crashed instance
// frees its slots within ttl. It must be at least 1 ms; zero or negative
// is an error. A later call replaces an earlier one.
func WithLeaseTTL(ttl time.Duration) Option {
	return optionFunc(func(c *config) { c.leaseTTL = ttl })
}

// WithTimeout bounds each Redis operation the Store makes (one script or
// command, including the release of a lease). Default 500 ms; zero or
// negative is an error. The bound is a context deadline: go-redis applies
// it to the socket only when the client's Options.ContextTimeoutEnabled is
// true, so set that (or ReadTimeout and WriteTimeout no longer than this)
// if a hung Redis must not stall a handshake. A later call replaces an
// earlier one.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.timeout = d })
}

// WithMirrorCapacity bounds each local mirror (revocations, bans) to n live
// entries. Default 100 000; zero or negative is an error. A mirror that
// would need more does not forget an entry: it reports an error
// (ErrMirrorFull) until enough entries expire and a reload fits. A later
// call replaces an earlier one.
func WithMirrorCapacity(n int) Option {
	return optionFunc(func(c *config) { c.mirrorCapacity = n })
}

// validate reports every problem of c.
func (c *config) validate() []error {
	var errs []error
	switch {
	case c.prefix == "":
		errs = append(errs, fmt.Errorf("%w: empty prefix", ErrConfig))
	case strings.ContainsAny(c.prefix, "{}"):
		errs = append(errs, fmt.Errorf("%w: prefix %q contains '{' or '}'", ErrConfig, c.prefix))
	}
	if c.leaseTTL < time.Millisecond {
		errs = append(errs, fmt.Errorf("%w: lease TTL %s is below 1ms", ErrConfig, c.leaseTTL))
	}
	if c.timeout <= 0 {
		errs = append(errs, fmt.Errorf("%w: timeout %s is not positive", ErrConfig, c.timeout))
	}
	if c.mirrorCapacity <= 0 {
		errs = append(errs, fmt.Errorf("%w: mirror capacity %d is not positive", ErrConfig, c.mirrorCapacity))
	}
	return errs
}
