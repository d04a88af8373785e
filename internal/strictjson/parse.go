package strictjson

import (
	"unicode"
	"unicode/utf8"
)

// Default limits, used for every zero (or negative) field of [Limits].
const (
	DefaultMaxDepth      = 32
	DefaultMaxActionLen  = 64
	DefaultMaxChannelLen = 256
	DefaultMaxIDLen      = 128
)

// MaxInput is the size from which Parse refuses any input with
// [ErrTooLarge], whatever the Limits: 2 GiB. Callers are expected to cap
// message sizes far below it before calling Parse.
const MaxInput = 1 << 31

// Limits bounds what Parse accepts. A zero or negative field means its
// default. Limits is a small value type: pass it by value.
type Limits struct {
	// MaxDepth is the deepest nesting of objects and arrays, the envelope
	// object counting as depth 1: with MaxDepth 2 the payload may be an
	// object or array of scalars. Default DefaultMaxDepth (32).
	MaxDepth int
	// MaxActionLen is the longest action, in bytes. Default
	// DefaultMaxActionLen (64).
	MaxActionLen int
	// MaxChannelLen is the longest channel, in bytes after unescaping.
	// Default DefaultMaxChannelLen (256).
	MaxChannelLen int
	// MaxIDLen is the longest id, in bytes after unescaping. Default
	// DefaultMaxIDLen (128).
	MaxIDLen int
}

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxActionLen <= 0 {
		l.MaxActionLen = DefaultMaxActionLen
	}
	if l.MaxChannelLen <= 0 {
		l.MaxChannelLen = DefaultMaxChannelLen
	}
	if l.MaxIDLen <= 0 {
		l.MaxIDLen = DefaultMaxIDLen
	}
	return l
}

// Envelope receives a parsed message. Its byte slices point into memory
// that Parse does not copy, so an Envelope is only valid while the input
// passed to Parse is unchanged and until the next Parse into the same
// Envelope:
//
//   - Action, Channel and ID are sub-slices of the input when the JSON
//     string has no escapes (the common case, no allocation). A string with
//     escapes is unescaped into Scratch, which Parse reuses and grows (a
//     growth allocates; reuse the Envelope to amortise it).
//   - Payload is always a sub-slice of the input.
//
// Byte slices rather than strings avoid an allocation per field; convert
// with string(…) where a string must outlive the input.
type Envelope struct {
	// Action is the action: 1 to Limits.MaxActionLen bytes of
	// [a-z0-9_.:-].
	Action []byte
	// Channel is the channel, printable ASCII without spaces, or nil when
	// the message has none. A present but empty channel ("channel":"") is
	// a non-nil empty slice; callers that treat both as "no channel", as
	// an omitempty field does, need not distinguish them.
	Channel []byte
	// ID is the client's request id, any printable text (unicode.IsPrint),
	// or nil when the message has none. "id":"" gives a non-nil empty
	// slice.
	ID []byte
	// Payload is the raw JSON payload value, without surrounding
	// whitespace, or nil when the message has none. It is syntactically
	// valid, valid UTF-8, free of duplicate keys, within the depth limit
	// and, when the action has a Schema, free of unknown or case-variant
	// keys: safe to hand to encoding/json. Decode it with the Schema's
	// Decoder through Checked.
	Payload []byte
	// Scratch is where escaped strings are unescaped. Parse truncates it,
	// appends to it and stores the grown buffer back. Leave it nil, or set
	// it to a buffer to use; do not modify it while the Envelope is in use.
	Scratch []byte

	checked Checked // the payload, as the action's Schema accepted it
}

// Checked returns the payload as checked with the action's [Schema]: the
// only form of it that the Schema's [Decoder] accepts. It is the zero
// Checked when the message has no payload, when Parse refused the message
// (ErrUnknownAction included) or checked it with no Schema. Like Payload,
// it is valid while Parse's input is unchanged.
func (e *Envelope) Checked() Checked { return e.checked }

// Parse validates data, one client message, and fills env, which must not
// be nil. It refuses the message, returning one of the *[Error] values of
// this package, unless data is exactly one JSON object with the members
// action (required), channel, id and payload and nothing else; see the
// package documentation for every rule.
//
// schemas maps an action to the schema of its payload. It is called at
// most once, with a valid action that it must not retain or modify. A nil
// return means the action is unknown: the message is still validated and,
// if otherwise acceptable, Parse fills env and returns [ErrUnknownAction].
// A nil schemas function accepts every action and checks no schema.
//
// If data is not valid UTF-8, Parse returns [ErrInvalidUTF8]. On any error
// other than ErrUnknownAction, env is reset (keeping its Scratch buffer).
//
// Parse does not use reflection and does not recurse. It does not allocate
// for a typical message. It may allocate, only: when an escaped string must
// be unescaped and env.Scratch has to grow (reuse the Envelope to amortise
// it); when more than 32 object keys are open at once (the keys of an
// object and of the objects enclosing it); when payload nesting exceeds 32
// levels (possible only with a raised Limits.MaxDepth); and for numbers of
// magnitude above 1e308, which are checked exactly.
func Parse(data []byte, lim Limits, schemas func(action []byte) *Schema, env *Envelope) error {
	if err := parse(data, lim.withDefaults(), schemas, env); err != nil {
		if err != ErrUnknownAction {
			if err != ErrInvalidUTF8 && !utf8.Valid(data) {
				err = ErrInvalidUTF8
			}
			*env = Envelope{Scratch: env.Scratch[:0]}
		}
		return err
	}
	return nil
}

// Envelope members, as bits of a set.
const (
	memberAction = 1 << iota
	memberChannel
	memberID
	memberPayload
)

func parse(data []byte, lim Limits, schemas func([]byte) *Schema, env *Envelope) *Error {
	if len(data) >= MaxInput {
		return ErrTooLarge
	}
	scratch := env.Scratch[:0]
	var (
		seen                  uint8
		action, channel, id   span
		payStart, payEnd      int
		sch                   *Schema
		unknown, payValidated bool
		err                   *Error
	)
	i := skipWS(data, 0)
	if i >= len(data) {
		return ErrInvalidJSON
	}
	if data[i] != '{' {
		if isValueStart(data[i]) {
			return ErrNotObject
		}
		return ErrInvalidJSON
	}
	if i = skipWS(data, i+1); i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			// Key: exact, unescaped, one of the four members.
			if i >= len(data) || data[i] != '"' {
				return ErrInvalidJSON
			}
			q, esc, err := scanString(data, i+1)
			if err != nil {
				return err
			}
			var m uint8
			switch string(data[i+1 : q]) {
			case "action":
				m = memberAction
			case "channel":
				m = memberChannel
			case "id":
				m = memberID
			case "payload":
				m = memberPayload
			}
			if esc || m == 0 {
				return ErrUnknownField
			}
			if seen&m != 0 {
				return ErrDuplicateKey
			}
			seen |= m
			if i = skipWS(data, q+1); i >= len(data) || data[i] != ':' {
				return ErrInvalidJSON
			}
			if i = skipWS(data, i+1); i >= len(data) {
				return ErrInvalidJSON
			}

			// Value.
			switch m {
			case memberAction:
				if action, i, scratch, err = stringMember(data, i, scratch, lim.MaxActionLen); err != nil {
					return err
				}
				a := action.bytes(data, scratch)
				if !validAction(a) {
					return ErrInvalidAction
				}
				if schemas != nil {
					if sch = schemas(a); sch == nil {
						unknown = true
					}
				}
			case memberChannel:
				if channel, i, scratch, err = stringMember(data, i, scratch, lim.MaxChannelLen); err != nil {
					return err
				}
				if !validChannel(channel.bytes(data, scratch)) {
					return ErrInvalidChannel
				}
			case memberID:
				if id, i, scratch, err = stringMember(data, i, scratch, lim.MaxIDLen); err != nil {
					return err
				}
				if !validID(id.bytes(data, scratch)) {
					return ErrInvalidID
				}
			case memberPayload:
				if data[i] == 'n' {
					return ErrWrongType
				}
				var root *node
				if sch != nil {
					root = sch.root
					payValidated = true
				}
				payStart = i
				if i, scratch, err = checkValue(data, i, root, 1, lim.MaxDepth, scratch); err != nil {
					return err
				}
				payEnd = i
			}

			if i = skipWS(data, i); i >= len(data) {
				return ErrInvalidJSON
			}
			if data[i] == ',' {
				i = skipWS(data, i+1)
				continue
			}
			if data[i] != '}' {
				return ErrInvalidJSON
			}
			i++
			break
		}
	}
	if skipWS(data, i) != len(data) {
		return ErrTrailingData
	}
	if seen&memberAction == 0 {
		return ErrActionMissing
	}
	if seen&memberPayload != 0 && sch != nil && !payValidated {
		// The payload came before the action: check it against the
		// schema now.
		if _, scratch, err = checkValue(data, payStart, sch.root, 1, lim.MaxDepth, scratch); err != nil {
			return err
		}
	}

	env.Action = action.bytes(data, scratch)
	env.Channel, env.ID, env.Payload = nil, nil, nil
	if seen&memberChannel != 0 {
		env.Channel = channel.bytes(data, scratch)
	}
	if seen&memberID != 0 {
		env.ID = id.bytes(data, scratch)
	}
	env.checked = Checked{}
	if seen&memberPayload != 0 {
		env.Payload = data[payStart:payEnd:payEnd]
		if sch != nil {
			env.checked = Checked{data: env.Payload, by: sch}
		}
	}
	env.Scratch = scratch
	if unknown {
		return ErrUnknownAction
	}
	return nil
}

// stringMember scans the envelope string value at data[i], unescaping it
// into scratch if needed, and checks its decoded length against max.
func stringMember(data []byte, i int, scratch []byte, max int) (span, int, []byte, *Error) {
	if data[i] != '"' {
		if isValueStart(data[i]) {
			return span{}, 0, scratch, ErrWrongType
		}
		return span{}, 0, scratch, ErrInvalidJSON
	}
	q, esc, err := scanString(data, i+1)
	if err != nil {
		return span{}, 0, scratch, err
	}
	s := mkSpan(i+1, q, false)
	if esc {
		off := len(scratch)
		scratch = appendUnescaped(scratch, data[i+1:q])
		s = mkSpan(off, len(scratch), true)
	}
	if int(s.n) > max {
		return span{}, 0, scratch, ErrFieldTooLong
	}
	return s, q + 1, scratch, nil
}

// validAction reports whether a is non-empty and made of [a-z0-9_.:-].
func validAction(a []byte) bool {
	if len(a) == 0 {
		return false
	}
	for _, c := range a {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// validChannel reports whether every byte of ch is printable ASCII other
// than space.
func validChannel(ch []byte) bool {
	for _, c := range ch {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// validID reports whether id, valid UTF-8, is printable text: no control,
// format (including bidi overrides), private-use or unassigned characters.
func validID(id []byte) bool {
	for i := 0; i < len(id); {
		if c := id[i]; c < utf8.RuneSelf {
			if c < ' ' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(id[i:])
		if !unicode.IsPrint(r) {
			return false
		}
		i += size
	}
	return true
}
