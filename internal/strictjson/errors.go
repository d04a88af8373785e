package strictjson

import "errors"

// Codes carried in [Error].Code; they are the codes of the error frame sent
// to the client.
const (
	// CodeInvalidMessage marks a message that is not an acceptable
	// envelope or whose payload does not fit the action's schema.
	CodeInvalidMessage = "invalid_message"
	// CodeUnknownAction marks a well-formed message whose action has no
	// registered schema.
	CodeUnknownAction = "unknown_action"
)

// Error is a refusal of a client message. Parse returns only the values
// declared below, so a refusal can be compared with == or [errors.Is]; the
// Code and Reason are fixed strings, safe to send to the client, and never
// contain any part of the input.
type Error struct {
	// Code is CodeInvalidMessage or CodeUnknownAction.
	Code string
	// Reason is a short, human-readable reason such as "duplicate key".
	Reason string
}

// Error returns "strictjson: " followed by the reason.
func (e *Error) Error() string { return "strictjson: " + e.Reason }

// The refusals returned by [Parse]. They must not be modified.
var (
	// ErrInvalidJSON: the input is not syntactically valid JSON (RFC 8259):
	// a comment, a single quote, NaN, a leading zero, a raw control
	// character in a string, an unterminated value, a missing comma, ….
	ErrInvalidJSON = &Error{CodeInvalidMessage, "invalid json"}
	// ErrInvalidUTF8: the input contains bytes that are not valid UTF-8.
	// It takes precedence over every other refusal.
	ErrInvalidUTF8 = &Error{CodeInvalidMessage, "invalid utf-8"}
	// ErrInvalidEscape: a string has an unknown escape, a malformed \u
	// escape or a \u escape that is a lone surrogate.
	ErrInvalidEscape = &Error{CodeInvalidMessage, "invalid escape"}
	// ErrNumberRange: a number's magnitude exceeds what a float64 can
	// hold (about 1.8e308), so encoding/json could not decode it into an
	// interface or a float.
	ErrNumberRange = &Error{CodeInvalidMessage, "number out of range"}
	// ErrTrailingData: something other than whitespace follows the
	// envelope object.
	ErrTrailingData = &Error{CodeInvalidMessage, "trailing data"}
	// ErrNotObject: the input is a JSON value other than an object.
	ErrNotObject = &Error{CodeInvalidMessage, "not an object"}
	// ErrUnknownField: an envelope key other than action, channel, id and
	// payload (exact case, no escapes), or a payload key that is not in
	// the action's schema.
	ErrUnknownField = &Error{CodeInvalidMessage, "unknown field"}
	// ErrDuplicateKey: a key appears twice in one object, at any depth.
	ErrDuplicateKey = &Error{CodeInvalidMessage, "duplicate key"}
	// ErrTooDeep: objects and arrays nest deeper than Limits.MaxDepth.
	ErrTooDeep = &Error{CodeInvalidMessage, "too deep"}
	// ErrActionMissing: the envelope has no action member.
	ErrActionMissing = &Error{CodeInvalidMessage, "action missing"}
	// ErrInvalidAction: the action is empty or has a byte outside
	// [a-z0-9_.:-].
	ErrInvalidAction = &Error{CodeInvalidMessage, "invalid action"}
	// ErrInvalidChannel: the channel has a byte outside printable ASCII
	// (0x21-0x7e; no space).
	ErrInvalidChannel = &Error{CodeInvalidMessage, "invalid channel"}
	// ErrInvalidID: the id has a character that is not printable
	// (unicode.IsPrint: no control, format or bidi characters).
	ErrInvalidID = &Error{CodeInvalidMessage, "invalid id"}
	// ErrFieldTooLong: action, channel or id is longer (in bytes, after
	// unescaping) than its limit.
	ErrFieldTooLong = &Error{CodeInvalidMessage, "field too long"}
	// ErrWrongType: action, channel or id is not a string, payload is
	// null, or a payload value has a JSON kind that the schema's Go type
	// cannot hold.
	ErrWrongType = &Error{CodeInvalidMessage, "wrong type"}
	// ErrTooLarge: the input is MaxInput bytes or longer.
	ErrTooLarge = &Error{CodeInvalidMessage, "message too large"}
	// ErrUnknownAction: the message is otherwise acceptable but no schema
	// is registered for its action.
	ErrUnknownAction = &Error{CodeUnknownAction, "unknown action"}
)

// The errors of [Decoder.Decode], besides those of encoding/json for the
// parts of a type handed to it. Their text is fixed and never echoes
// input.
var (
	// ErrUnchecked: the payload did not pass Parse with the decoder's own
	// Schema.
	ErrUnchecked = errors.New("strictjson: payload not checked with the decoder's schema")
	// ErrSyntax: the input is not the JSON that Parse accepts.
	ErrSyntax = errors.New("strictjson: malformed input")
	// ErrType: a JSON value of the wrong kind for its Go type, or a key
	// that names no field.
	ErrType = errors.New("strictjson: value does not fit the type")
	// ErrRange: a number that does not fit its Go type, or that an
	// integer type cannot hold (a fraction, an exponent).
	ErrRange = errors.New("strictjson: number does not fit the type")
	// ErrDepth: nesting deeper than encoding/json accepts.
	ErrDepth = errors.New("strictjson: nesting too deep")
	// ErrTarget: Decode was given a destination of the wrong type.
	ErrTarget = errors.New("strictjson: destination of the wrong type")
)
