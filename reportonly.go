package wssec

import "context"

// GuardName names a guard that WithReportOnly can switch to report-only.
type GuardName string

// Guards that can run report-only. Token verification cannot: a client
// whose token failed has no principal to let through.
const (
	GuardTransport     GuardName = "transport"
	GuardOrigin        GuardName = "origin"
	GuardHandshakeRate GuardName = "handshake_rate"
	GuardQuota         GuardName = "quota"
	GuardBan           GuardName = "ban"
	GuardMessageRate   GuardName = "message_rate"
	GuardChannel       GuardName = "channel"
	GuardPolicy        GuardName = "policy"
)

var reportOnlyGuards = []GuardName{GuardTransport, GuardOrigin, GuardHandshakeRate, GuardQuota, GuardBan, GuardMessageRate, GuardChannel, GuardPolicy}

// enforce returns ref, unless the guard that refused (ref.guard) is
// report-only: then it records the would-be refusal, as an
// EventReportOnly made from ev, and returns nil.
func (g *Guard) enforce(ctx context.Context, ref *refusal, ev *Event) *refusal {
	if ref == nil || ref.guard == "" || !g.cfg.reportOnly[ref.guard] {
		return ref
	}
	e := *ev
	e.Kind, e.Reason, e.Status = EventReportOnly, ref.reason, ref.status
	e.Detail, e.Err = ref.err.Error(), ref.err
	g.emit(ctx, e)
	return nil
}
