package prommetrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wssec/wssec/internal/origin"
	"github.com/wssec/wssec/internal/topk"
)

// Values of the origin_host label that are not hosts.
const (
	hostNull    = "null"    // the opaque origin "null" (sandboxed frames, file: pages, some redirects)
	hostInvalid = "invalid" // an Origin that is not a serialized http(s) origin
)

// minNamed is how many refusals the table must be sure of before a host
// gets a series of its own: a host seen once stays in "other", so an
// attacker who sends a new Origin every time creates no series at all.
const minNamed = 2

// originHost reduces an attacker-controlled Origin header to a bounded,
// exposition-safe label value: the host alone, lowercase ASCII (punycode
// for an IDN, an IPv6 address in its canonical form), at most 128 bytes;
// "null" for the opaque origin; "invalid" for anything else (a missing or
// unknown scheme, a path, userinfo, a bad port, control characters,
// non-ASCII bytes, an overlong value).
func originHost(s string) string {
	o, err := origin.ParseOrigin(s)
	switch {
	case errors.Is(err, origin.ErrNull):
		return hostNull
	case err != nil, !validLabelValue(o.Host):
		return hostInvalid
	}
	return o.Host
}

// refusedOrigins counts the Origin hosts of handshakes refused (or, in
// report-only mode, let through) because their origin was not allowed, in
// one space-saving table of fixed size per outcome. It is a
// prometheus.Collector: each scrape exports the hosts the table currently
// ranks highest as
//
//	wssec_refused_origins_total{outcome, origin_host}
//
// and everything else as origin_host="other". The sum over origin_host is
// the exact number of such handshakes.
type refusedOrigins struct {
	desc     *prometheus.Desc
	outcomes [2]string
	sketches [2]*topk.Sketch
}

func newRefusedOrigins(ns string, k int) *refusedOrigins {
	return &refusedOrigins{
		desc: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "refused_origins_total"),
			"Handshakes refused (or let through by report-only) because their Origin was not allowed, by outcome and "+
				"the Origin's host; only the most frequent hosts (WithTopOrigins) have a series, the rest are \"other\".",
			[]string{"outcome", "origin_host"}, nil),
		outcomes: [2]string{outcomeRefused, outcomeReportOnly},
		sketches: [2]*topk.Sketch{topk.New(k), topk.New(k)},
	}
}

// add counts one origin refusal with the given outcome (index into
// outcomes).
func (r *refusedOrigins) add(outcome int, originHeader string) {
	r.sketches[outcome].Add(originHost(originHeader))
}

// Describe implements prometheus.Collector.
func (r *refusedOrigins) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

// Collect implements prometheus.Collector. A host's value is the number
// of its refusals the table is sure of, less the first (which "other"
// counted before the host stood out), so every series, "other" included,
// only grows while the host stays in the table: a host that drops out and
// returns starts again, which Prometheus reads as a counter reset.
func (r *refusedOrigins) Collect(ch chan<- prometheus.Metric) {
	for i, s := range r.sketches {
		top, total := s.Top()
		named := uint64(0)
		for _, e := range top {
			// "other" as a host would collide with the catch-all series.
			if g := e.Guaranteed(); g >= minNamed && e.Key != other {
				v := g - 1
				named += v
				ch <- prometheus.MustNewConstMetric(r.desc, prometheus.CounterValue, float64(v), r.outcomes[i], e.Key)
			}
		}
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.CounterValue, float64(total-named), r.outcomes[i], other)
	}
}
