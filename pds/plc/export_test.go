package plc

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// GET /export pages through every operation by createdAt, as JSON lines.
func TestExport(t *testing.T) {
	e := newTestEnv(t)
	clock := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	e.dir.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	var dids []string
	for _, h := range []string{"a.test", "b.test", "c.test"} {
		a := e.register(t, h, newK256(t))
		dids = append(dids, a.did.String())
	}
	page := func(q url.Values) ([]AuditEntry, int) {
		res, err := http.Get(e.srv.URL + "/export?" + q.Encode())
		require.NoError(t, err)
		defer res.Body.Close()
		var out []AuditEntry
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			var en AuditEntry
			require.NoError(t, json.Unmarshal(sc.Bytes(), &en), sc.Text())
			out = append(out, en)
		}
		return out, res.StatusCode
	}
	all, st := page(url.Values{})
	require.Equal(t, 200, st)
	require.Len(t, all, 3)
	var got []string
	after := ""
	for i := 0; i < 5; i++ {
		q := url.Values{"count": {"1"}}
		if after != "" {
			q.Set("after", after)
		}
		p, st := page(q)
		require.Equal(t, 200, st)
		if len(p) == 0 {
			break
		}
		require.NotNil(t, p[0].Operation)
		got = append(got, p[0].DID.String())
		after = p[0].CreatedAt
	}
	require.Equal(t, dids, got, "one page per operation, oldest first")
	_, st = page(url.Values{"count": {"zero"}})
	require.Equal(t, 400, st)
	_, st = page(url.Values{"after": {"yesterday"}})
	require.Equal(t, 400, st)
}
