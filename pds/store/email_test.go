package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEmailConfirmationAndUpdate(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "pds.sqlite"))
	ctx := context.Background()
	write := func(fn func(tx *Tx) error) error { return s.Write(ctx, fn) }
	for _, a := range []*Account{
		{DID: "did:plc:a", Handle: "a.test", Email: "A@example.com", PasswordHash: "x", SigningKey: []byte("k")},
		{DID: "did:plc:b", Handle: "b.test", Email: "b@example.com", PasswordHash: "x", SigningKey: []byte("k")},
	} {
		require.NoError(t, write(func(tx *Tx) error { return tx.CreateAccount(a) }))
	}
	get := func() *Account {
		t.Helper()
		a, err := s.AccountByDID(ctx, "did:plc:a")
		require.NoError(t, err)
		return a
	}
	require.False(t, get().EmailConfirmed)
	require.ErrorIs(t, write(func(tx *Tx) error { return tx.ConfirmEmail("did:plc:a", "other@example.com") }), ErrNotFound)
	require.NoError(t, write(func(tx *Tx) error { return tx.ConfirmEmail("did:plc:a", "a@EXAMPLE.com") }))
	require.True(t, get().EmailConfirmed)

	on, off := true, false
	// The same address: the factor changes, the confirmation stays.
	require.NoError(t, write(func(tx *Tx) error { return tx.UpdateEmail("did:plc:a", "a@example.com", &on) }))
	a := get()
	require.True(t, a.EmailConfirmed)
	require.True(t, a.EmailAuthFactor)
	inTx, err := func() (*Account, error) {
		var got *Account
		err := write(func(tx *Tx) error { var err error; got, err = tx.Account("did:plc:a"); return err })
		return got, err
	}()
	require.NoError(t, err)
	require.Equal(t, a, inTx)

	// Another account's address is refused; a new one is unconfirmed, factor off, and the
	// tokens mailed to the old address for confirming or changing it are gone.
	require.ErrorIs(t, write(func(tx *Tx) error { return tx.UpdateEmail("did:plc:a", "B@example.com", nil) }), ErrEmailTaken)
	for _, p := range []string{"confirm_email", "update_email", "plc_operation"} {
		require.NoError(t, write(func(tx *Tx) error {
			return tx.PutEmailToken("did:plc:a", p, "AAAAA-"+p[:5], time.Now().Add(time.Minute))
		}))
	}
	require.NoError(t, write(func(tx *Tx) error { return tx.UpdateEmail("did:plc:a", "New@example.com", nil) }))
	a = get()
	require.Equal(t, "new@example.com", a.Email)
	require.False(t, a.EmailConfirmed)
	require.False(t, a.EmailAuthFactor)
	for p, want := range map[string]error{"confirm_email": ErrNotFound, "update_email": ErrNotFound, "plc_operation": nil} {
		err := write(func(tx *Tx) error { return tx.TakeEmailToken("did:plc:a", p, "AAAAA-"+p[:5]) })
		require.True(t, errors.Is(err, want), "%s token after a change of address: %v", p, err)
	}
	require.NoError(t, write(func(tx *Tx) error { return tx.UpdateEmail("did:plc:a", "new@example.com", &off) }))
	require.ErrorIs(t, write(func(tx *Tx) error { return tx.UpdateEmail("did:plc:nobody", "x@example.com", nil) }), ErrNotFound)

	before := time.Now().Add(-time.Second)
	none, err := s.PasswordsChanged(ctx, before)
	require.NoError(t, err)
	require.Empty(t, none)
	require.NoError(t, write(func(tx *Tx) error { return tx.SetPassword("did:plc:a", "new-hash") }))
	require.Equal(t, "new-hash", get().PasswordHash)
	changed, err := s.PasswordsChanged(ctx, before)
	require.NoError(t, err)
	require.Len(t, changed, 1)
	require.WithinDuration(t, time.Now(), changed["did:plc:a"], 5*time.Second)
	changed, err = s.PasswordsChanged(ctx, time.Now().Add(time.Second))
	require.NoError(t, err)
	require.Empty(t, changed)
	require.ErrorIs(t, write(func(tx *Tx) error { return tx.SetPassword("did:plc:nobody", "h") }), ErrNotFound)
}

func TestTakeEmailTokenFor(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "pds.sqlite"))
	ctx := context.Background()
	put := func(did, tok string, exp time.Time) {
		t.Helper()
		require.NoError(t, s.Write(ctx, func(tx *Tx) error { return tx.PutEmailToken(did, "reset_password", tok, exp) }))
	}
	take := func(purpose, tok string) (string, error) {
		var did string
		err := s.Write(ctx, func(tx *Tx) error { var err error; did, err = tx.TakeEmailTokenFor(purpose, tok); return err })
		return did, err
	}
	put("did:plc:a", "AAAAA-BBBBB", time.Now().Add(time.Minute))
	put("did:plc:b", "CCCCC-DDDDD", time.Now().Add(time.Minute))
	put("did:plc:c", "EEEEE-FFFFF", time.Now().Add(-time.Second))
	for _, tc := range []struct {
		name, purpose, token, did string
		want                      error
	}{
		{"wrong token", "reset_password", "AAAAA-BBBBC", "", ErrNotFound},
		{"other purpose", "confirm_email", "AAAAA-BBBBB", "", ErrNotFound},
		{"right token, lower case", "reset_password", " ccccc-ddddd", "did:plc:b", nil},
		{"used once already", "reset_password", "CCCCC-DDDDD", "", ErrNotFound},
		{"expired", "reset_password", "EEEEE-FFFFF", "did:plc:c", ErrTokenExpired},
		{"another account's token still works", "reset_password", "AAAAA-BBBBB", "did:plc:a", nil},
	} {
		did, err := take(tc.purpose, tc.token)
		if !errors.Is(err, tc.want) || did != tc.did {
			t.Errorf("%s: got %q, %v; want %q, %v", tc.name, did, err, tc.did, tc.want)
		}
	}
}
