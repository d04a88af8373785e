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
//	    themselves, every other code as "other".
//	wssec_connection_duration_seconds
//	    histogram of connection lifetimes (WithDurationBuckets).
//	wssec_messages_total{outcome, reason, action}
//	    messages: accepted (reason "ok", action as registered with
//	    wssec.WithAction), refused or report_only by reason ("forbidden",
//	    "invalid_message", "unknown_action", "rate_limited", …). A refused
//	    message is labelled with its action only when that action is known
//	    (named with WithActions, accepted before, or the built-in "auth");
//	    otherwise, and for an unparsed message, the action is "other", so
//	    that unknown actions a client invents never become labels. Some reasons end the connection
//	    rather than refuse one message: "message_too_big", "invalid_utf8",
//	    "rate_abuse", "denial_limit", "slow_consumer", "token_expired".
//	wssec_channel_refusals_total{outcome, channel_rule}
//	    refused (or report-only) messages that named a channel, by the
//	    pattern of the channel rule that matched (wssec.Event.Pattern), or
//	    "other" when none did. The channel itself is never a label.
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
// Every label value is bounded twice. wssec only puts low-cardinality
// codes in the fields used here (reasons, registered actions, configured
// patterns) and never the attacker-controlled ones (Origin, Channel,
// Subject, Detail, a close frame's text). As a second line of defence,
// every value taken from an event passes through a per-label set that
// admits at most WithMaxLabelValues distinct values (64 by default) made
// of at most 128 bytes of [A-Za-z0-9_.:*{}/[]-]; anything else is counted
// as "other". Even if a future code path put client input in a reason, a
// flood of distinct values adds at most that many series.
//
// # Concurrency
//
// Observe and MessageAccepted are safe for concurrent use and never block
// on anything but a short critical section the first time a label value is
// seen: they update counters and return.
package prommetrics
