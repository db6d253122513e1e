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

func TestNewAppPassword(t *testing.T) {
	seen := map[string]bool{}
	counts := map[byte]int{}
	for i := 0; i < 2000; i++ {
		pw, err := NewAppPassword()
		if err != nil {
			t.Fatal(err)
		}
		if !LooksLikeAppPassword(pw) {
			t.Fatalf("%q does not have the app-password shape", pw)
		}
		if seen[pw] {
			t.Fatalf("repeated app password %q", pw)
		}
		seen[pw] = true
		for j := 0; j < len(pw); j++ {
			if pw[j] != '-' {
				counts[pw[j]]++
			}
		}
	}
	// 32,000 characters over 32 symbols: each close to 1,000. The old modulo-of-base64
	// generator gave some symbols twice the weight of others.
	if len(counts) != 32 {
		t.Fatalf("alphabet used %d symbols, want 32", len(counts))
	}
	for c, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("symbol %q appeared %d times in 32,000, want about 1,000", c, n)
		}
	}
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"abcd-efgh-ijkl-mnop", true},
		{" ABCD-efgh-ijkl-2345 ", true},
		{"abcd-efgh-ijkl-mno1", false},
		{"abcdefghijklmnop", false},
		{"hunter2", false},
	} {
		if got := LooksLikeAppPassword(tc.in); got != tc.want {
			t.Errorf("LooksLikeAppPassword(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	key := []byte("k")
	if string(AppPasswordLookup(key, "ABCD-efgh-ijkl-mnop")) != string(AppPasswordLookup(key, "abcd-efgh-ijkl-mnop")) {
		t.Error("lookup is case-sensitive")
	}
	if string(AppPasswordLookup([]byte("other"), "abcd-efgh-ijkl-mnop")) == string(AppPasswordLookup(key, "abcd-efgh-ijkl-mnop")) {
		t.Error("lookup ignores the key")
	}
}
