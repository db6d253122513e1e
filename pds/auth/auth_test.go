package auth

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPasswords(t *testing.T) {
	h := NewHasher(1<<10, 2)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(enc, "scrypt$1024$8$1$"))
	ok, err := h.Verify(ctx, enc, "correct horse")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = h.Verify(ctx, enc, "wrong")
	require.NoError(t, err)
	require.False(t, ok)
	for _, bad := range []string{"", "scrypt$x", "bcrypt$1$2$3$4$5", "scrypt$0$8$1$AA$AA", "scrypt$1024$8$1$!!$AA"} {
		_, err := h.Verify(ctx, bad, "x")
		require.ErrorIs(t, err, ErrBadPasswordHash, bad)
	}
}

func TestSessions(t *testing.T) {
	s := NewSessions([]byte("0123456789abcdef0123456789abcdef"), "did:web:pds.test")
	p, err := s.Issue("did:plc:alice", ScopeAccess)
	require.NoError(t, err)

	c, err := s.CheckAccess(p.Access)
	require.NoError(t, err)
	require.Equal(t, "did:plc:alice", c.Subject)
	rc, err := s.CheckRefresh(p.Refresh)
	require.NoError(t, err)
	require.Equal(t, p.RefreshID, rc.ID)

	other := NewSessions([]byte("another key another key another k"), "did:web:pds.test")
	wrongAud := NewSessions([]byte("0123456789abcdef0123456789abcdef"), "did:web:other.test")
	parts := strings.Split(p.Access, ".")
	cases := []struct {
		name  string
		check func() error
		want  error
	}{
		{"refresh as access", func() error { _, err := s.CheckAccess(p.Refresh); return err }, ErrWrongType},
		{"access as refresh", func() error { _, err := s.CheckRefresh(p.Access); return err }, ErrWrongType},
		{"other key", func() error { _, err := other.CheckAccess(p.Access); return err }, ErrInvalidToken},
		{"other audience", func() error { _, err := wrongAud.CheckAccess(p.Access); return err }, ErrInvalidToken},
		{"garbage", func() error { _, err := s.CheckAccess("garbage.abc.x"); return err }, ErrInvalidToken},
		{"tampered", func() error { _, err := s.CheckAccess(parts[0] + "." + parts[1] + "x." + parts[2]); return err }, ErrInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { require.ErrorIs(t, tc.check(), tc.want) })
	}

	late := NewSessions([]byte("0123456789abcdef0123456789abcdef"), "did:web:pds.test")
	late.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	_, err = late.CheckAccess(p.Access)
	require.ErrorIs(t, err, ErrExpiredToken)
}

func TestBearerAndAdmin(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	_, err := BearerToken(r)
	require.ErrorIs(t, err, ErrNoToken)
	r.Header.Set("Authorization", "Basic abc")
	_, err = BearerToken(r)
	require.ErrorIs(t, err, ErrInvalidToken)
	r.Header.Set("Authorization", "Bearer tok")
	tok, err := BearerToken(r)
	require.NoError(t, err)
	require.Equal(t, "tok", tok)

	r.SetBasicAuth("admin", "pw")
	require.True(t, CheckAdmin(r, "pw"))
	require.False(t, CheckAdmin(r, "other"))
	require.False(t, CheckAdmin(r, ""))
}
