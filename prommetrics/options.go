package prommetrics

import (
	"fmt"
	"math"
	"regexp"
	"slices"
)

// Default settings.
const (
	// DefaultNamespace prefixes every metric name.
	DefaultNamespace = "wssec"
	// DefaultMaxLabelValues bounds the distinct values of each label.
	DefaultMaxLabelValues = 64
	// maxMaxLabelValues is the largest WithMaxLabelValues accepted.
	maxMaxLabelValues = 10_000
	// DefaultTopOrigins is how many refused Origin hosts get a series.
	DefaultTopOrigins = 10
	// maxTopOrigins is the largest WithTopOrigins accepted.
	maxTopOrigins = 100
)

// DefaultDurationBuckets are the upper bounds, in seconds, of the
// connection duration histogram: from half a second to four hours (the
// default maximum connection age is two hours).
func DefaultDurationBuckets() []float64 {
	return []float64{0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400}
}

// Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	namespace      string
	buckets        []float64
	maxLabelValues int
	actions        []string
	topOrigins     int
}

func defaultConfig() config {
	return config{
		namespace:      DefaultNamespace,
		buckets:        DefaultDurationBuckets(),
		maxLabelValues: DefaultMaxLabelValues,
		topOrigins:     DefaultTopOrigins,
	}
}

// WithNamespace sets the prefix of every metric name. Default "wssec"; ""
// means no prefix. It must be a valid Prometheus name component
// ([a-zA-Z_][a-zA-Z0-9_]*). The last call wins.
func WithNamespace(ns string) Option {
	return optionFunc(func(c *config) { c.namespace = ns })
}

// WithDurationBuckets sets the upper bounds, in seconds, of the connection
// duration histogram. Default DefaultDurationBuckets(). They must be
// finite, positive and strictly increasing, and there must be at least
// one. The last call wins.
func WithDurationBuckets(buckets ...float64) Option {
	b := slices.Clone(buckets)
	return optionFunc(func(c *config) { c.buckets = b })
}

// WithMaxLabelValues sets how many distinct values each label may take
// before further values are counted as "other". Default 64; it must be
// between 1 and 10 000. The last call wins.
func WithMaxLabelValues(n int) Option {
	return optionFunc(func(c *config) { c.maxLabelValues = n })
}

// WithActions names the actions registered with wssec.WithAction, so that
// refused messages carry their action label from the start (otherwise an
// action is known once a message of it has been accepted). Default: none.
// Repeated calls add actions; they count towards the label's bound.
func WithActions(actions ...string) Option {
	a := slices.Clone(actions)
	return optionFunc(func(c *config) { c.actions = append(c.actions, a...) })
}

// WithTopOrigins sets K, how many Origin hosts of refused handshakes
// wssec_refused_origins_total names: the K that a fixed-size table
// (space-saving) currently ranks highest, each once it is sure of at least
// two refusals from it; every other host is counted as "other". Default
// 10; it must be between 1 and 100. Memory and series stay bounded by K
// however many distinct origins an attacker sends. The last call wins.
func WithTopOrigins(k int) Option {
	return optionFunc(func(c *config) { c.topOrigins = k })
}

var namespaceRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// validate returns every problem of c.
func (c *config) validate() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("prommetrics: "+format, args...))
	}
	if c.namespace != "" && !namespaceRE.MatchString(c.namespace) {
		bad("WithNamespace %q: not a valid metric name component", c.namespace)
	}
	if len(c.buckets) == 0 {
		bad("WithDurationBuckets: no bucket given")
	}
	for i, b := range c.buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) || b <= 0 {
			bad("WithDurationBuckets: bucket %v must be finite and positive", b)
			break
		}
		if i > 0 && b <= c.buckets[i-1] {
			bad("WithDurationBuckets: buckets must be strictly increasing (%v after %v)", b, c.buckets[i-1])
			break
		}
	}
	if c.maxLabelValues < 1 || c.maxLabelValues > maxMaxLabelValues {
		bad("WithMaxLabelValues %d: must be between 1 and %d", c.maxLabelValues, maxMaxLabelValues)
	}
	if c.topOrigins < 1 || c.topOrigins > maxTopOrigins {
		bad("WithTopOrigins %d: must be between 1 and %d", c.topOrigins, maxTopOrigins)
	}
	for _, a := range c.actions {
		if !validLabelValue(a) {
			bad("WithActions %q: not an acceptable label value", a)
		}
	}
	return errs
}
