package wssec

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
	"github.com/wssec/wssec/internal/envelope"
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
)

// registered is a compiled action.
type registered struct {
	name     string
	typ      reflect.Type
	schema   *envelope.Schema
	isStruct bool // validator runs on structs (and pointers to them) only
}

// messageRules is everything the read path needs, compiled by New.
type messageRules struct {
	actions  map[string]*registered
	rules    []compiledRule
	policy   Policy
	validate *validator.Validate
	limits   envelope.Limits
}

// schemaFor is the envelope's action lookup; indexing a map with a
// converted byte slice does not allocate.
func (m *messageRules) schemaFor(action []byte) *envelope.Schema {
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
	// Report fields by their JSON names, the names the client sent.
	m.validate.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		if name == "" {
			return f.Name
		}
		return name
	})
	add := func(name string, t reflect.Type) {
		s, err := envelope.CompileSchema(t)
		if err != nil {
			bad("WithAction", fmt.Sprintf("%q", name), err.Error())
			return
		}
		st := t
		if st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		r := &registered{name: name, typ: t, schema: s, isStruct: st.Kind() == reflect.Struct}
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
	add(actionPing, reflect.TypeFor[empty]())
	add(actionAuth, reflect.TypeFor[authPayload]())
	for _, a := range c.actions {
		switch {
		case !validAction(a.name):
			bad("WithAction", fmt.Sprintf("%q", a.name), "an action is 1 to 64 bytes of [a-z0-9_.:-]")
		case a.name == actionPing || a.name == actionAuth || a.name == actionError || a.name == actionPong:
			bad("WithAction", fmt.Sprintf("%q", a.name), "reserved for the built-in protocol")
		case m.actions[a.name] != nil:
			bad("WithAction", fmt.Sprintf("%q", a.name), "registered twice")
		default:
			add(a.name, a.typ)
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
	if s == "" || len(s) > envelope.DefaultMaxActionLen {
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

// decode turns a payload that passed the envelope into the registered
// type and runs the validator. The returned reason is safe for the client.
func (m *messageRules) decode(r *registered, payload []byte) (any, string) {
	v := reflect.New(r.typ)
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, v.Interface()); err != nil {
			return nil, "payload does not match the action's schema"
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
		if err := m.tryValidate(target.Interface()); err != nil {
			var bad *badTagError
			if errors.As(err, &bad) {
				return nil, "payload failed validation"
			}
			return nil, validationReason(err)
		}
	}
	return v.Interface(), ""
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
