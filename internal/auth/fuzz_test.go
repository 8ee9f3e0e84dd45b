package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
)

var fixedReasons = map[string]bool{
	reasonMissingHeader: true, reasonMalformedHeader: true, reasonEmptyToken: true,
	reasonTokenTooLong: true, reasonTokenChars: true,
}

// FuzzParseBearer: ParseBearer never panics; it accepts exactly
// "<bearer in any case> <printable token>" and fails only with one of the
// fixed reasons (so a failure can never echo the input).
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{
		"", " ", "Bearer", "Bearer ", "Bearer  x", "bearer x", "BEARER apikey:abc", "Basic dXNlcjpwYXNz",
		"Bearer a.b.c", "Bearer x y", "Bearer\tx", "Bearer x\n", "Bearer \x00", "Bearer é", "Token x",
		"Bearer " + strings.Repeat("a", MaxTokenLength), "Bearer " + strings.Repeat("a", MaxTokenLength+1),
		"Bearerx", " Bearer x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, err := ParseBearer(header)
		if err != nil {
			if token != "" {
				t.Fatal("token returned with an error")
			}
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.CodeAuthenticationFailed {
				t.Fatalf("error %v", err)
			}
			if r, _ := de.Details.(domain.AuthDetails); !fixedReasons[r.Reason] || de.Message != "Authentication failed: "+r.Reason {
				t.Fatalf("reason %q / message %q not from the fixed set", r.Reason, de.Message)
			}
			return
		}
		if token == "" || len(token) > MaxTokenLength {
			t.Fatalf("token of %d bytes accepted", len(token))
		}
		if !strings.EqualFold(header[:7], "bearer ") || header[7:] != token {
			t.Fatalf("%q parsed to %q", header, token)
		}
		for i := 0; i < len(token); i++ {
			if token[i] <= ' ' || token[i] >= 0x7f {
				t.Fatalf("token byte %#x accepted", token[i])
			}
		}
	})
}
