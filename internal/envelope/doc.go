// Package envelope is a strict, allocation-lean scanner for the JSON
// envelope of every client WebSocket message,
//
//	{"action": "...", "channel": "...", "id": "...", "payload": <any JSON value>}
//
// and for the strict check of the payload against a per-action key schema.
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
// with reflection, by [CompileSchema], typically when an action is
// registered.
package envelope
