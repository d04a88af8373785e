package wssec

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/go-playground/validator/v10"
	"github.com/wssec/wssec/internal/strictjson"
	"github.com/wssec/wssec/internal/tagcheck"
)

// Message is the envelope of every client frame:
//
//	{"action":"publish","channel":"tenant:acme:orders","id":"42","payload":{…}}
//
// ReadMessage returns only messages that passed every guard. Data holds
// the payload decoded into the type registered with WithAction, as a
// pointer (*T); use DataAs to read it.
type Message struct {
	Action  string          `json:"action"`
	Channel string          `json:"channel,omitempty"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Data    any             `json:"-"`
}

// DataAs returns the decoded payload of m as a T, the type registered for
// its action with WithAction[T].
func DataAs[T any](m *Message) (T, bool) {
	var zero T
	if m == nil {
		return zero, false
	}
	p, ok := m.Data.(*T)
	if !ok || p == nil {
		return zero, false
	}
	return *p, true
}

// Built-in actions.
const (
	actionPing  = "ping"
	actionPong  = "pong"
	actionAuth  = "auth"
	actionError = "error"

	// The actions the channel rules check against a rule's Read scope.
	actionSubscribe   = "subscribe"
	actionUnsubscribe = "unsubscribe"
)

// registered is a compiled action.
type registered struct {
	name string
	typ  reflect.Type
	// channelFree: a message may omit its channel (ChannelFree).
	channelFree bool
	// scopes are the scopes every message needs (RequireScope).
	scopes   []string
	schema   *strictjson.Schema
	isStruct bool // validator runs on structs (and pointers to them) only
	// validate is false for a struct type that has no validate tag
	// anywhere: the validator could not refuse it, and is skipped.
	validate bool
	// plan is typ's validate tags compiled into direct checks (see
	// internal/tagcheck), nil when validator/v10 checks typ.
	plan *tagcheck.Plan
	// dec is the compiled decoder of typ, nil when encoding/json decodes
	// it (see internal/strictjson).
	dec *strictjson.Decoder
	// newMessage allocates, in one piece, a Message and the zero value
	// of typ, and returns the Message and a pointer (*T) to the value
	// (newHolder[T]). The value lives as long as the Message or the
	// pointer does.
	newMessage func() (*Message, reflect.Value)
}

// newHolder is registered.newMessage for T: one allocation, typed at
// compile time, with no reflection to build it.
func newHolder[T any]() (*Message, reflect.Value) {
	h := new(struct {
		M Message
		D T
	})
	return &h.M, reflect.ValueOf(&h.D)
}

// arenaLen is how many bytes the decoded strings of a payload of n bytes
// may take (unescaping never lengthens a string); 0 when the decoder
// stores no strings.
func (r *registered) arenaLen(n int) int {
	if r.dec == nil || !r.dec.UsesArena() {
		return 0
	}
	return n
}

// messageRules is everything the read path needs, compiled by New.
type messageRules struct {
	actions  map[string]*registered
	rules    []compiledRule
	policy   Policy
	validate *validator.Validate
	limits   strictjson.Limits
}

// schemaFor is the envelope's action lookup; indexing a map with a
// converted byte slice does not allocate.
func (m *messageRules) schemaFor(action []byte) *strictjson.Schema {
	if r := m.actions[string(action)]; r != nil {
		return r.schema
	}
	return nil
}

// emptySchema admits only an absent or empty payload (the ping action).
type empty struct{}

func compileMessageRules(c *config) (*messageRules, []error) {
	var errs []error
	bad := func(opt, val, reason string) {
		errs = append(errs, &ConfigError{Option: opt, Value: val, Reason: reason})
	}
	m := &messageRules{
		actions:  make(map[string]*registered),
		policy:   c.policy,
		validate: validator.New(validator.WithRequiredStructEnabled()),
	}
	// Report fields by their JSON names, the names the client sent (the
	// compiled checks name them the same way).
	m.validate.RegisterTagNameFunc(tagcheck.FieldName)
	add := func(name string, t reflect.Type, ac actionConfig, alloc func() (*Message, reflect.Value)) {
		s, err := strictjson.Compile(t)
		if err != nil {
			bad("WithAction", fmt.Sprintf("%q", name), err.Error())
			return
		}
		st := t
		if st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		r := &registered{name: name, typ: t, schema: s, isStruct: st.Kind() == reflect.Struct,
			channelFree: ac.channelFree, scopes: slices.Clone(ac.scopes), newMessage: alloc}
		r.validate = r.isStruct && (st.ConvertibleTo(timeType) || needsValidator(st, map[reflect.Type]bool{}))
		if r.validate {
			// The common tags run as direct checks; a type with any
			// other stays with validator/v10 (same answers either way).
			if p, err := tagcheck.Compile(st); err == nil {
				r.plan = p
			}
		}
		r.dec = s.Decoder()
		if r.isStruct {
			// The validator parses tags lazily and panics on a bad one
			// ("maxx=3", "max=abc"): try the zero value now, so a bad tag
			// is a configuration error here rather than a panic later.
			var bt *badTagError
			if err := m.tryValidate(reflect.New(st).Interface()); errors.As(err, &bt) {
				bad("WithAction", fmt.Sprintf("%q", name), err.Error())
				return
			}
		}
		m.actions[name] = r
	}
	add(actionPing, reflect.TypeFor[empty](), actionConfig{channelFree: true}, newHolder[empty])
	add(actionAuth, reflect.TypeFor[authPayload](), actionConfig{channelFree: true}, newHolder[authPayload])
	for _, a := range c.actions {
		for _, sc := range a.opts.scopes {
			if sc == "" || strings.ContainsFunc(sc, unicode.IsSpace) {
				bad("WithAction", fmt.Sprintf("%q", a.name), fmt.Sprintf("RequireScope(%q): a scope is non-empty and has no space", sc))
			}
		}
		switch {
		case a.opts.channelFree && (a.name == actionSubscribe || a.name == actionUnsubscribe):
			bad("WithAction", fmt.Sprintf("%q", a.name), "ChannelFree: subscribe and unsubscribe always name a channel")
		case !validAction(a.name):
			bad("WithAction", fmt.Sprintf("%q", a.name), "an action is 1 to 64 bytes of [a-z0-9_.:-]")
		case a.name == actionPing || a.name == actionAuth || a.name == actionError || a.name == actionPong:
			bad("WithAction", fmt.Sprintf("%q", a.name), "reserved for the built-in protocol")
		case m.actions[a.name] != nil:
			bad("WithAction", fmt.Sprintf("%q", a.name), "registered twice")
		default:
			add(a.name, a.typ, a.opts, a.alloc)
		}
	}
	for _, r := range c.channelRules {
		cr, err := compileRule(r)
		if err != nil {
			bad("WithChannelRules", fmt.Sprintf("%q", r.Pattern), err.Error())
			continue
		}
		m.rules = append(m.rules, cr)
	}
	return m, errs
}

func validAction(s string) bool {
	if s == "" || len(s) > strictjson.DefaultMaxActionLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("_.:-", c) >= 0) {
			return false
		}
	}
	return true
}

// decodeInto decodes payload, which passed the envelope with r's schema,
// into the zero value v (a *T) points to and runs the validator. Decoded
// strings are stored in arena's spare capacity (see internal/strictjson): its
// backing array must never be modified afterwards. A nil arena allocates
// them. The returned reason is safe for the client.
func (m *messageRules) decodeInto(r *registered, payload strictjson.Checked, arena []byte, v reflect.Value) string {
	if len(payload.Bytes()) > 0 {
		var err error
		if r.dec != nil {
			err = r.dec.Decode(payload, v, arena)
		} else {
			err = json.Unmarshal(payload.Bytes(), v.Interface())
		}
		if err != nil {
			return "payload does not match the action's schema"
		}
	}
	if r.isStruct {
		// For WithAction[*T], v is a **T: validate the T it points to
		// (the zero T when the payload was absent), as for WithAction[T];
		// the validator refuses a pointer to a pointer.
		target := v
		if e := v.Elem(); e.Kind() == reflect.Pointer {
			if e.IsNil() {
				e.Set(reflect.New(e.Type().Elem()))
			}
			target = e
		}
		if !r.validate {
			return ""
		}
		if r.plan != nil {
			if f, ok := r.plan.Check(target.UnsafePointer()); !ok {
				return fmt.Sprintf("field %q failed %q", f.Field, f.Tag) // as validationReason
			}
			return ""
		}
		if err := m.tryValidate(target.Interface()); err != nil {
			var bad *badTagError
			if errors.As(err, &bad) {
				return "payload failed validation"
			}
			return validationReason(err)
		}
	}
	return ""
}

var (
	timeType   = reflect.TypeFor[time.Time]()
	valuerType = reflect.TypeFor[validator.Valuer]()
)

// needsValidator reports whether the validator could refuse a value of
// type t: whether a validate tag, an interface (whose dynamic value the
// validator walks) or a validator.Valuer (which substitutes a value of
// its choice) is reachable from t. It errs towards true.
func needsValidator(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t.Implements(valuerType) || reflect.PointerTo(t).Implements(valuerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return needsValidator(t.Elem(), seen)
	case reflect.Map:
		return needsValidator(t.Key(), seen) || needsValidator(t.Elem(), seen)
	case reflect.Struct:
		if seen[t] {
			return false
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			if _, ok := f.Tag.Lookup("validate"); ok || needsValidator(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// badTagError is a validator panic, caused by a malformed validate tag.
type badTagError struct{ v any }

func (e *badTagError) Error() string { return fmt.Sprintf("validate tag: %v", e.v) }

// tryValidate runs the validator on a pointer to a struct, turning a
// panic (a malformed tag in a part of the type the zero value did not
// reach at New) into a *badTagError instead of a crash.
func (m *messageRules) tryValidate(v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &badTagError{p}
		}
	}()
	return m.validate.Struct(v)
}

// validationReason names the first failing field and tag, never a value.
func validationReason(err error) string {
	if ves, ok := err.(validator.ValidationErrors); ok && len(ves) > 0 {
		fe := ves[0]
		return fmt.Sprintf("field %q failed %q", fe.Field(), fe.Tag())
	}
	return "payload failed validation"
}
