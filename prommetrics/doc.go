// Package prommetrics exports wssec security events as Prometheus metrics.
//
// An Observer is a wssec.Observer and a wssec.MessageObserver. Register it
// on a registry of your choosing and hand it to the Guard:
//
//	reg := prometheus.NewRegistry()
//	obs, err := prommetrics.New(reg)
//	if err != nil { … }
//	g, err := wssec.New(…, wssec.WithObserver(obs))
//	…
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// New never touches the global default registry: pass
// prometheus.DefaultRegisterer explicitly if that is where the metrics
// belong. One Observer may serve several Guards; their counts add up.
//
// # Metrics
//
// Every name below starts with the namespace ("wssec" unless WithNamespace
// says otherwise). Outcomes are "accepted", "refused" and "report_only" (a
// guard switched to report-only with wssec.WithReportOnly saw something it
// would have refused and let it through).
//
//	wssec_events_total{kind}
//	    every event, by wssec.EventKind.
//	wssec_handshakes_total{outcome, reason}
//	    handshakes: accepted (reason "ok"), refused or report_only, by the
//	    event's reason code ("origin_not_allowed", "token_expired", …). A
//	    report-only handshake that is then accepted counts under both.
//	wssec_handshakes_by_origin_total{outcome, origin_pattern}
//	    the same handshakes, by the configured allowlist pattern the Origin
//	    matched (wssec.Event.Pattern), or "other" (no pattern: refused
//	    before or at the origin check, or admitted as same-origin when no
//	    wssec.WithOrigins is set). The Origin header itself is never a
//	    label: an attacker chooses it. A refusal after the origin check (a
//	    bad token, say) carries the pattern the origin matched.
//	wssec_connections_active
//	    gauge: accepted handshakes minus closed connections.
//	wssec_connections_closed_total{code}
//	    closed connections by close code: 1000-1015 and 4000-4999 as
//	    themselves, every other code as "other". 1006 is a peer that
//	    vanished without a close frame (EOF, TCP reset): client
//	    instability, not a protocol error.
//	wssec_connection_duration_seconds
//	    histogram of connection lifetimes (WithDurationBuckets).
//	wssec_messages_total{outcome, reason, action, channel_rule}
//	    messages: accepted (reason "ok", action as registered with
//	    wssec.WithAction), refused or report_only by reason ("forbidden",
//	    "invalid_envelope", "invalid_payload", "invalid_message",
//	    "unknown_action", "rate_limited", …). channel_rule is the pattern
//	    of the channel rule that admitted (or refused) the message, "none"
//	    when the message named no channel (a channel-free action, or a
//	    refusal before the channel was read) and "other" when it named one
//	    no rule matches: accepted traffic per rule and action is the
//	    baseline against which per-channel anomalies show. A refused
//	    message is labelled with its action only when that action is known
//	    (named with WithActions, accepted before, or the built-in "auth");
//	    otherwise, and for an unparsed message, the action is "other", so
//	    that unknown actions a client invents never become labels.
//	    "invalid_envelope" is a frame that is not an acceptable envelope
//	    (protocol-level probing); "invalid_payload" a payload that fails
//	    its action's schema (more often a client bug); "invalid_message" a
//	    message of a registered action without its channel. Some reasons
//	    end the connection rather than refuse one message:
//	    "message_too_big", "invalid_utf8", "rate_abuse", "denial_limit",
//	    "slow_consumer", "token_expired", "protocol_error".
//	wssec_channel_refusals_total{outcome, channel_rule}
//	    refused (or report-only) messages that named a channel, by the
//	    pattern of the channel rule that matched (wssec.Event.Pattern), or
//	    "other" when none did. The channel itself is never a label.
//	wssec_refused_origins_total{outcome, origin_host}
//	    handshakes refused (or let through by report-only) because their
//	    Origin was not allowed, by the Origin's host: lowercase, without
//	    scheme or port, "null" for the opaque origin and "invalid" for a
//	    value that is not an http(s) origin. Only the hosts a fixed-size
//	    space-saving table currently ranks highest have a series
//	    (WithTopOrigins, default 10), each once the table is sure of two
//	    refusals from it; its value counts the refusals after its first
//	    while it stays in the table. Everything else is "other", so the
//	    series of an outcome sum to the exact number of origin refusals and
//	    an attacker who varies the Origin adds no series. A host that drops
//	    out and comes back restarts from one (a counter reset).
//	wssec_send_queue_drops_total
//	    connections closed because their send queue was full (reason
//	    "slow_consumer").
//	wssec_bans_total{class}
//	    bans placed by wssec.WithBanPolicy, by class ("token", "origin",
//	    "rate", "message"), and by Guard.BanSubject and Guard.BanIP
//	    ("api").
//	wssec_revocations_total{reason}
//	    calls to Guard.Revoke ("subject_revoked") and Guard.RevokeToken
//	    ("token_revoked").
//	wssec_revocations_full_total{where}
//	    revocations that did not fit, so tokens were refused wholesale
//	    instead of the revocation being forgotten (fail closed): "table"
//	    (the Guard's, wssec.WithRevocationCapacity: every token issued up
//	    to it refused until it lapses) or "store" (a shared store's
//	    bounded mirror: every handshake refused with 503 until it fits;
//	    at most one a second). Both are exported at 0; alert on any rise.
//	wssec_store_unavailable_total{check}
//	    times the shared Store could not decide a check: "rate", "quota",
//	    "ban" (decided with the instance's own limits) or "revocation",
//	    "replay", "ticket" (refused: fail closed), at most one a second per
//	    check; and "revocation_feed": the shared store's revocation feed
//	    came back after a gap (revocations recorded meanwhile took effect
//	    late here).
//	wssec_disconnects_total{reason}
//	    times live sockets were closed without a revocation:
//	    "disconnect" (Guard.Disconnect), "banned" (a ban ended the
//	    party's sessions), "session_replaced" (wssec.WithEvictOldest).
//	wssec_reauthentications_total
//	    sockets that re-authenticated with a fresh token.
//	wssec_config_warnings_total{reason}
//	    configuration warnings ("insecure_transport", "report_only",
//	    "jwks_refresh_failed", …).
//	wssec_label_overflows_total{label}
//	    label values replaced by "other" because the label already had its
//	    maximum number of distinct values or the value was not acceptable.
//	    A steady rise means something is feeding unexpected values.
//
// # Cardinality
//
// Every label value but origin_host is bounded twice. wssec only puts
// low-cardinality codes in the fields used here (reasons, registered
// actions, configured patterns) and never the attacker-controlled ones
// (Origin, Channel, Subject, Detail, a close frame's text). As a second line of defence,
// every value taken from an event passes through a per-label set that
// admits at most WithMaxLabelValues distinct values (64 by default) made
// of at most 128 bytes of [A-Za-z0-9_.:*{}/[]-]; anything else is counted
// as "other". Even if a future code path put client input in a reason, a
// flood of distinct values adds at most that many series.
//
// origin_host is the one label taken from client input (the Origin
// header): it is reduced to a host name that needs no escaping (at most
// 128 bytes of lowercase letters, digits, '.', '-' and an IPv6 address's
// ':') and bounded by its top-K table, K+1 series per outcome at most.
//
// # Concurrency
//
// Observe and MessageAccepted are safe for concurrent use and never block
// on anything but a short critical section the first time a label value is
// seen, or, for an origin refusal, the top-K table's (a map lookup, and a
// scan of its K entries for a host it does not hold): they update counters
// and return.
package prommetrics
