package authn_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fhirguard/fhirguard/internal/authn"
)

// FuzzValidate: any bearer string is either a token this server signed
// (none of the fuzzed ones) or refused as invalid/expired; never a panic,
// never an accepted forgery.
func FuzzValidate(f *testing.F) {
	e := newEnv(f, nil)
	good := e.token(f, nil)
	f.Add(good[:len(good)-4] + "AAAA")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == good {
			return
		}
		_, _, err := e.v.Validate(context.Background(), tok)
		if err == nil {
			t.Fatalf("accepted a forged token %q", tok)
		}
		if !errors.Is(err, authn.ErrInvalid) && !errors.Is(err, authn.ErrExpired) && !errors.Is(err, authn.ErrNoToken) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
