package strictjson_test

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/wssec/wssec/internal/strictjson"
)

func ExampleParse() {
	type publish struct {
		Text string `json:"text"`
	}
	// Compile once, at registration.
	sch, err := strictjson.SchemaFor[publish]()
	if err != nil {
		panic(err)
	}
	schemas := func(action []byte) *strictjson.Schema {
		if string(action) == "publish" {
			return sch
		}
		return nil
	}

	var env strictjson.Envelope // reuse it across messages
	for _, msg := range []string{
		`{"action":"publish","channel":"tenant:acme:room1","id":"42","payload":{"text":"hello"}}`,
		`{"action":"publish","id":"43","payload":{"text":"a","Text":"b"}}`,
		`{"action":"publish","payload":{"text":"a","text":"b"}}`,
		`{"action":"delete","id":"44"}`,
	} {
		err := strictjson.Parse([]byte(msg), strictjson.Limits{}, schemas, &env)
		var e *strictjson.Error
		if errors.As(err, &e) {
			fmt.Printf("refused: %s (%s) id=%q\n", e.Code, e.Reason, env.ID)
			continue
		}
		// Safe: no duplicate, unknown or case-variant key can reach here.
		// The decoder takes only the payload as the schema checked it.
		var p publish
		if err := sch.Decoder().Decode(env.Checked(), reflect.ValueOf(&p), nil); err != nil {
			panic(err)
		}
		fmt.Printf("%s on %s: %q\n", env.Action, env.Channel, p.Text)
	}
	// Output:
	// publish on tenant:acme:room1: "hello"
	// refused: invalid_message (unknown field) id=""
	// refused: invalid_message (duplicate key) id=""
	// refused: unknown_action (unknown action) id="44"
}
