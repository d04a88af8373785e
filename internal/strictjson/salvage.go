package strictjson

import "unicode/utf8"

// Refine decides how to answer a message that [Parse] refused with err, so
// that the answer keeps the error-frame contract:
//
//   - It fills env.ID with the client's id whenever the top-level object
//     has exactly one "id" member whose value is a well-formed id string
//     (a JSON string that Parse would accept as an id), wherever it stands
//     and whatever else is wrong with the message, so the client can match
//     the refusal to its request. env.Action is filled the same way with
//     an action string of 1 to Limits.MaxActionLen bytes of printable
//     ASCII (for logs; it may name no registered action).
//   - It returns [ErrUnknownAction] when data is a well-formed message —
//     exactly one JSON object, syntactically valid, valid UTF-8, no
//     duplicate key at any depth, within Limits.MaxDepth — whose action is
//     such a string with no schema (schemas returns nil), whatever its
//     other members: an unknown top-level key, a null payload, a case
//     variant such as "Echo". Otherwise it returns err.
//
// env's other fields are reset. Refine reads data at most three times, does
// not recurse and allocates only as Parse does; it is meant for the
// refusal path, whose rate the caller bounds. An err of nil or
// ErrInvalidUTF8 is returned as is, after the id is looked for; an err of
// ErrUnknownAction is returned as is too (Parse filled env already, and
// Refine leaves it alone).
func Refine(data []byte, lim Limits, schemas func(action []byte) *Schema, err *Error, env *Envelope) *Error {
	if err == ErrUnknownAction {
		return err
	}
	lim = lim.withDefaults()
	Salvage(data, lim, env)
	if err == nil || err == ErrInvalidUTF8 || env.Action == nil || len(data) >= MaxInput {
		return err
	}
	if schemas != nil && schemas(env.Action) != nil {
		return err // a registered action: the refusal stands
	}
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' || !utf8.Valid(data) {
		return err
	}
	end, scratch, serr := checkValue(data, i, nil, 0, lim.MaxDepth, env.Scratch)
	env.Scratch = scratch
	if serr != nil || skipWS(data, end) != len(data) {
		return err
	}
	return ErrUnknownAction
}

// Salvage resets env (keeping its Scratch) and fills env.ID and env.Action
// from data, a message that may be malformed anywhere, by the rules of
// [Refine]. A member that appears twice, or whose value is not a
// well-formed string, leaves its field nil: the message is then ambiguous
// about it. Only top-level members count; an "id" inside the payload
// never does. Strings that Parse refuses (invalid UTF-8, a lone
// surrogate) are read past, as encoding/json reads past them, so a member
// after one still counts; Salvage stops at the first byte it cannot read
// past.
func Salvage(data []byte, lim Limits, env *Envelope) {
	lim = lim.withDefaults()
	*env = Envelope{Scratch: env.Scratch[:0]}
	scratch := env.Scratch
	var (
		id, action         span
		idSeen, actionSeen int
		idOK, actionOK     bool
	)
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' || len(data) >= MaxInput {
		return
	}
	i++
	for {
		i = skipWS(data, i)
		if i >= len(data) || data[i] != '"' {
			break
		}
		// A key Parse refuses is read past, not stopped at: encoding/json
		// reads past invalid UTF-8 and lone surrogates, and a member
		// after them still counts. Such a key decodes with U+FFFD in it,
		// so it is neither "id" nor "action". An escaped key that
		// unescapes to one of them is a member that Parse refuses: it
		// counts as seen (encoding/json reads it), never as well-formed.
		var m uint8
		q, esc, err := scanString(data, i+1)
		if err != nil {
			if q = stringEnd(data, i+1); q < 0 {
				break
			}
		} else {
			key, n := data[i+1:q], len(scratch)
			if esc {
				scratch = appendUnescaped(scratch, key)
				key = scratch[n:]
			}
			switch string(key) {
			case "id":
				m = memberID
			case "action":
				m = memberAction
			}
			scratch = scratch[:n]
		}
		if i = skipWS(data, q+1); i >= len(data) || data[i] != ':' {
			break
		}
		if i = skipWS(data, i+1); i >= len(data) {
			break
		}
		if m != 0 {
			var s span
			ok := false
			if data[i] == '"' {
				var e *Error
				var next int
				if s, next, scratch, e = stringMember(data, i, scratch, 1<<30); e == nil {
					b := s.bytes(data, scratch)
					if m == memberID {
						ok = len(b) <= lim.MaxIDLen && utf8.Valid(b) && validID(b)
					} else {
						ok = len(b) <= lim.MaxActionLen && printableASCII(b)
					}
					i = next
				} else if i = skipValue(data, i); i < 0 {
					break // a string Parse refuses: seen, not well-formed
				}
			} else if i = skipValue(data, i); i < 0 {
				break
			}
			ok = ok && !esc
			if m == memberID {
				idSeen++
				id, idOK = s, ok
			} else {
				actionSeen++
				action, actionOK = s, ok
			}
		} else if i = skipValue(data, i); i < 0 {
			break
		}
		if i = skipWS(data, i); i >= len(data) || data[i] != ',' {
			break
		}
		i++
	}
	if idSeen == 1 && idOK {
		env.ID = id.bytes(data, scratch)
	}
	if actionSeen == 1 && actionOK {
		env.Action = action.bytes(data, scratch)
	}
	env.Scratch = scratch
}

// printableASCII reports whether b is non-empty printable ASCII without
// space: a string that could be meant as an action.
func printableASCII(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
