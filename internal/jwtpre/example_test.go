package jwtpre_test

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/wssec/wssec/internal/jwtpre"
)

func ExampleCheck() {
	enc := base64.RawURLEncoding.EncodeToString
	sig := enc(make([]byte, 64))
	payload := enc([]byte(`{"sub":"alice"}`))
	p := &jwtpre.Policy{
		Algs: []string{"ES256"},
		Kids: func(kid string) bool { return kid == "2024-01" },
	}

	h, err := jwtpre.Check(enc([]byte(`{"alg":"ES256","kid":"2024-01","typ":"JWT"}`))+"."+payload+"."+sig, p)
	fmt.Println(h.Alg, h.Kid, h.Typ, err)

	_, err = jwtpre.Check(enc([]byte(`{"alg":"none"}`))+"."+payload+".", p)
	fmt.Println(errors.Is(err, jwtpre.ErrMalformed), err)

	_, err = jwtpre.Check(enc([]byte(`{"alg":"HS256","kid":"2024-01"}`))+"."+payload+"."+sig, p)
	fmt.Println(errors.Is(err, jwtpre.ErrAlgNotAllowed))
	// Output:
	// ES256 2024-01 JWT <nil>
	// true jwtpre: malformed token: empty signature segment
	// true
}

func ExampleFromSubprotocols() {
	// new WebSocket(url, ["wssec.v1", "bearer." + token]) sends:
	token, others, err := jwtpre.FromSubprotocols([]string{"wssec.v1, bearer.eyJhbGciOiJFUzI1NiJ9.e30.c2ln"})
	fmt.Println(token, others, err)
	// Output:
	// eyJhbGciOiJFUzI1NiJ9.e30.c2ln [wssec.v1] <nil>
}
