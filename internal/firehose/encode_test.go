package firehose

import (
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/stretchr/testify/require"
)

func TestParseCursor(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want *int64
		err  bool
	}{
		{"", nil, false},
		{"0", ptr[int64](0), false},
		{"42", ptr[int64](42), false},
		{"-1", nil, true},
		{"1.5", nil, true},
		{"abc", nil, true},
		{"99999999999999999999", nil, true},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := ParseCursor(tc.raw)
			if tc.err {
				require.ErrorIs(t, err, ErrBadCursor)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestEncodeRoundTrip: frames written by the server helpers decode with the client.
func TestEncodeRoundTrip(t *testing.T) {
	b, err := EncodeMessage("#identity", &comatproto.SyncSubscribeRepos_Identity{Did: "did:plc:x", Seq: 7, Time: "2026-01-01T00:00:00Z"})
	require.NoError(t, err)
	ev, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, int64(7), ev.Seq)
	require.Equal(t, "did:plc:x", ev.Identity.Did)

	b, err = EncodeError("FutureCursor", "too far")
	require.NoError(t, err)
	ev, err = Decode(b)
	require.NoError(t, err)
	require.Equal(t, TypeError, ev.Type)
	require.Equal(t, "FutureCursor", ev.Error.Error)
}
