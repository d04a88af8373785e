// Package strictjson reads the JSON of every client WebSocket message: a
// strict, allocation-lean scanner for the envelope,
//
//	{"action": "...", "channel": "...", "id": "...", "payload": <any JSON value>}
//
// a strict check of the payload against a per-action key schema, and a
// precompiled decoder of the checked payload into the action's Go type.
// One lexer reads the JSON and one reflect compile ([Compile]) yields both
// the schema and the decoder, so the two cannot disagree on a type.
//
// encoding/json is lenient where a security boundary must not be: it
// accepts duplicate keys (the last one wins, so two layers of a system may
// read different values from one message), matches object keys to struct
// fields case-insensitively ({"TEXT":…} fills a field tagged "text"),
// silently drops unknown fields, and replaces invalid UTF-8 and lone
// surrogates with U+FFFD. [Parse] refuses all of those in one pass over the
// input, so that a payload it accepted can then be decoded with
// encoding/json and mean exactly one thing.
//
// # What Parse refuses
//
//   - anything that is not exactly one RFC 8259 JSON object, optionally
//     surrounded by JSON whitespace (no comments, NaN, single quotes,
//     leading zeros, raw control characters in strings, invalid escapes,
//     lone surrogates in \u escapes, trailing data), and numbers too large
//     for a float64 (which encoding/json cannot decode into an interface);
//   - invalid UTF-8 anywhere in the input; when the input is not valid
//     UTF-8 the error is always [ErrInvalidUTF8], whatever else is wrong
//     with it, so that a caller can fail the connection with close code
//     1007 as RFC 6455 requires;
//   - top-level keys other than exactly "action", "channel", "id" and
//     "payload" (case-sensitive; a top-level key written with an escape is
//     refused as an unknown field even if it would decode to a known name);
//   - a duplicate key in any object at any depth (keys are compared after
//     unescaping, so "a" and "\u0061" are duplicates);
//   - nesting deeper than [Limits].MaxDepth, the envelope object counting
//     as depth 1;
//   - a missing, empty or malformed action, an over-long or malformed
//     channel or id, and null or non-string values for them; a null
//     payload;
//   - when a [Schema] is registered for the action: any payload object key
//     that is not exactly the JSON name of a field of the registered Go
//     type at that level, and a JSON kind that can never decode into the
//     Go type (an array where a struct is expected, a string where a number
//     is expected, …).
//
// Every refusal is one of the *[Error] values declared in this package
// (compare with ==, [errors.Is] or [errors.As]); its Reason is short,
// fixed and safe to send to the client, and never echoes input.
//
// # Unknown actions
//
// [ErrUnknownAction] is reported only for an input that passed every other
// check: the schema is looked up as soon as the action is known, but the
// rest of the message is still validated (without a schema) before the
// unknown action is reported. The Envelope is then fully populated, so
// the caller can echo its ID in the error frame.
//
// For any other refusal, [Refine] decides the answer: a message that is
// well-formed JSON but unacceptable only because of an unregistered action
// (a case variant, an unknown key or a null payload beside it) becomes
// [ErrUnknownAction], and the client's id is salvaged from the refused
// input ([Salvage]) so the error frame can echo it.
//
// # Cost
//
// Parse uses no reflection and, for messages without escaped strings and
// objects of at most a few dozen keys, does not allocate. It keeps an
// explicit, bounded stack instead of recursing. Schemas are compiled once,
// with reflection, by [Compile], typically when an action is registered.
//
// # Decoding a checked payload
//
// A [Schema]'s [Decoder] produces exactly what encoding/json.Unmarshal
// produces, without encoding/json's per-call reflection and allocations.
// It takes only a [Checked] payload, which only Parse makes, from a
// payload it accepted with that same Schema ([Envelope.Checked]): the
// decoder relies on that check (one syntactically valid JSON value, valid
// UTF-8, no lone surrogates, no duplicate keys, every object key decoded
// into a struct exactly the JSON name of one of its fields), and the type
// system sees that it has been made.
//
// The decoder handles strings, booleans, every integer and float kind,
// structs (fields selected by their json tags as encoding/json does),
// pointers and slices of those, to any depth, including recursive types.
// A part of the type that needs encoding/json's own rules — a map, an
// interface, an array, []byte (base64), json.Number, a type with an
// UnmarshalJSON or UnmarshalText method, a struct with embedded fields or
// a ",string" option — is handed to encoding/json.Unmarshal for just that
// value, which decodes it exactly as it would inside the enclosing value.
// When the type itself is such a part (or contains a named pointer type,
// whose handling by encoding/json is irregular), [Schema.Decoder] is nil
// and the caller uses encoding/json on [Checked.Bytes].
//
// Decode stores values through unsafe pointers, at the field offsets and
// with the kinds that Compile read from reflect; the input decides only
// which of those fields are written and with what values, never where. It
// allocates pointers' targets and grows slices with reflect, so the
// garbage collector always sees typed memory, and it bounds its recursion
// as encoding/json does (10000 levels). It keeps these properties on any
// input, checked or not: it never panics and never writes outside the
// value; a key that names no field is refused rather than skipped.
//
// Decode copies every decoded string (unescaped) into the spare capacity
// of a caller-supplied arena and returns strings that point into it, so
// that strings cost no allocation. The unescaped strings of a payload
// never take more bytes than the payload, so an arena with len(payload)
// spare bytes always suffices; without room, a string is allocated as
// usual. The caller owns the arena's backing array and must never modify
// it afterwards: the strings alias it.
package strictjson
