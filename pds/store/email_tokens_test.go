package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestEmailTokens(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "pds.sqlite"))
	ctx := context.Background()
	put := func(tok string, exp time.Time) {
		t.Helper()
		if err := s.Write(ctx, func(tx *Tx) error { return tx.PutEmailToken("did:plc:a", "plc_operation", tok, exp) }); err != nil {
			t.Fatal(err)
		}
	}
	take := func(purpose, tok string) error {
		return s.Write(ctx, func(tx *Tx) error { return tx.TakeEmailToken("did:plc:a", purpose, tok) })
	}
	put("AAAAA-BBBBB", time.Now().Add(time.Minute))
	put("CCCCC-DDDDD", time.Now().Add(time.Minute)) // replaces the first
	for _, tc := range []struct {
		name, purpose, token string
		want                 error
	}{
		{"replaced token", "plc_operation", "AAAAA-BBBBB", ErrNotFound},
		{"other purpose", "delete_account", "CCCCC-DDDDD", ErrNotFound},
		{"wrong token", "plc_operation", "CCCCC-DDDDE", ErrNotFound},
		{"right token, typed in lower case", "plc_operation", " ccccc-ddddd ", nil},
		{"used once already", "plc_operation", "CCCCC-DDDDD", ErrNotFound},
	} {
		if err := take(tc.purpose, tc.token); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	put("EEEEE-FFFFF", time.Now().Add(-time.Second))
	if err := take("plc_operation", "EEEEE-FFFFF"); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("expired token: got %v", err)
	}
}
