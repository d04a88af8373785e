package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/wssec/wssec"
)

// maxMetricSeries bounds the distinct (kind, reason, code) series, so
// nothing a client sends can grow the metrics without limit.
const maxMetricSeries = 256

// metrics is a wssec.Observer that counts security events by kind, reason
// and code (the HTTP status of a handshake refusal, the close code of a
// closed or refused connection). Observe is cheap and never blocks.
type metrics struct {
	mu     sync.Mutex // guards counts
	counts map[seriesKey]uint64
}

type seriesKey struct {
	kind   wssec.EventKind
	reason string
	code   int
}

func newMetrics() *metrics { return &metrics{counts: make(map[seriesKey]uint64)} }

// Observe implements wssec.Observer.
func (m *metrics) Observe(e wssec.Event) {
	k := seriesKey{kind: e.Kind, reason: e.Reason, code: e.Status}
	if e.CloseCode != 0 {
		k.code = e.CloseCode
	}
	if e.Kind == wssec.EventConnClosed {
		// The reason of a close is the close frame's text, which the
		// client chooses when it closes first: not a label.
		k.reason = ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.counts[k]; !ok && len(m.counts) >= maxMetricSeries {
		k = seriesKey{kind: "other", reason: "series_limit"}
	}
	m.counts[k]++
}

// count returns how many events of kind with reason were seen, and the
// codes they carried.
func (m *metrics) count(kind wssec.EventKind, reason string) (n uint64, codes []int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range m.counts {
		if k.kind == kind && k.reason == reason {
			n += v
			codes = append(codes, k.code)
		}
	}
	slices.Sort(codes)
	return n, codes
}

// writeTo writes the counters in the Prometheus text format (the
// prommetrics package will export them properly).
func (m *metrics) writeTo(w io.Writer, hs hubStats) {
	type row struct {
		k seriesKey
		v uint64
	}
	m.mu.Lock()
	rows := make([]row, 0, len(m.counts))
	for k, v := range m.counts {
		rows = append(rows, row{k, v})
	}
	m.mu.Unlock()
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.k.kind, b.k.kind), cmp.Compare(a.k.reason, b.k.reason), cmp.Compare(a.k.code, b.k.code))
	})
	var b strings.Builder
	b.WriteString("# HELP wssec_events_total Security events by kind, reason and code (HTTP status or close code).\n")
	b.WriteString("# TYPE wssec_events_total counter\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "wssec_events_total{kind=%s,reason=%s,code=\"%d\"} %d\n",
			label(string(r.k.kind)), label(r.k.reason), r.k.code, r.v)
	}
	b.WriteString("# HELP chat_rooms Rooms with at least one subscriber.\n# TYPE chat_rooms gauge\n")
	fmt.Fprintf(&b, "chat_rooms %d\n", hs.rooms)
	b.WriteString("# HELP chat_subscriptions Subscriptions over all rooms.\n# TYPE chat_subscriptions gauge\n")
	fmt.Fprintf(&b, "chat_subscriptions %d\n", hs.subscriptions)
	b.WriteString("# HELP chat_messages_published_total Messages published.\n# TYPE chat_messages_published_total counter\n")
	fmt.Fprintf(&b, "chat_messages_published_total %d\n", hs.published)
	io.WriteString(w, b.String())
}

// label quotes a label value (Go quoting escapes what Prometheus needs).
func label(s string) string { return strconv.Quote(s) }
