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

// enforce returns ref, unless its guard is report-only: then it records
// the would-be refusal and returns nil.
func (g *Guard) enforce(ctx context.Context, guard GuardName, ref *refusal, ev Event) *refusal {
	if ref == nil || !g.cfg.reportOnly[guard] {
		return ref
	}
	ev.Kind, ev.Reason, ev.Status = EventReportOnly, ref.reason, ref.status
	ev.Detail, ev.Err = ref.err.Error(), ref.err
	g.emit(ctx, ev)
	return nil
}
