package ratelimit

import (
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clock is a test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLimiterAllow(t *testing.T) {
	type step struct {
		advance   time.Duration
		key       string
		points    int
		allowed   bool
		remaining int
		reset     time.Duration
	}
	cases := []struct {
		name  string
		limit Limit
		steps []step
	}{
		{"counts requests until the budget is spent", Limit{3, time.Minute}, []step{
			{0, "a", 1, true, 2, time.Minute},
			{10 * time.Second, "a", 1, true, 1, 50 * time.Second},
			{0, "a", 1, true, 0, 50 * time.Second},
			{0, "a", 1, false, 0, 50 * time.Second},
		}},
		{"keys are independent", Limit{1, time.Minute}, []step{
			{0, "a", 1, true, 0, time.Minute},
			{0, "a", 1, false, 0, time.Minute},
			{0, "b", 1, true, 0, time.Minute},
		}},
		{"weighted points; a refusal is not counted", Limit{10, time.Hour}, []step{
			{0, "did:plc:x", 3, true, 7, time.Hour},
			{0, "did:plc:x", 2, true, 5, time.Hour},
			{0, "did:plc:x", 6, false, 5, time.Hour},
			{0, "did:plc:x", 5, true, 0, time.Hour},
			{0, "did:plc:x", 1, false, 0, time.Hour},
		}},
		{"the window ends and the budget is back", Limit{2, time.Minute}, []step{
			{0, "a", 2, true, 0, time.Minute},
			{59 * time.Second, "a", 1, false, 0, time.Second},
			{time.Second, "a", 1, true, 1, time.Minute},
		}},
		{"more points than the whole budget are refused without tracking the key", Limit{5, time.Minute}, []step{
			{0, "a", 6, false, 5, time.Minute},
			{0, "a", 5, true, 0, time.Minute},
		}},
		{"zero points only reads", Limit{5, time.Minute}, []step{
			{0, "a", 0, true, 5, time.Minute},
			{0, "a", 2, true, 3, time.Minute},
			{0, "a", 0, true, 3, time.Minute},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			lim := New(tc.limit, Options{Now: clk.Now})
			for i, s := range tc.steps {
				clk.Advance(s.advance)
				res := lim.Allow(s.key, s.points)
				require.Equal(t, s.allowed, res.Allowed, "step %d", i)
				require.Equal(t, s.remaining, res.Remaining, "step %d", i)
				require.Equal(t, s.reset, res.Reset, "step %d", i)
				require.Equal(t, tc.limit, res.Limit, "step %d", i)
			}
		})
	}
}

func TestLimiterAddPastTheLimit(t *testing.T) {
	clk := newClock()
	lim := New(Limit{3, time.Minute}, Options{Now: clk.Now})
	require.True(t, lim.Allow("a", 3).Allowed)
	res := lim.Add("a", 2)
	require.True(t, res.Allowed)
	require.Equal(t, 0, res.Remaining)
	// 5 used of 3: the next window is needed before anything fits again.
	require.False(t, lim.Allow("a", 1).Allowed)
	clk.Advance(time.Minute)
	require.True(t, lim.Allow("a", 3).Allowed)
}

func TestSetAllowIsAllOrNothing(t *testing.T) {
	clk := newClock()
	s := NewSet([]Limit{{10, time.Hour}, {4, 24 * time.Hour}}, Options{Now: clk.Now})
	res := s.Allow("k", 3)
	require.True(t, res.Allowed)
	// The day limit (1 left) is tighter than the hour limit (7 left).
	require.Equal(t, Limit{4, 24 * time.Hour}, res.Limit)
	require.Equal(t, 1, res.Remaining)

	// The day limit refuses 2 points: the hour limit must not keep them.
	res = s.Allow("k", 2)
	require.False(t, res.Allowed)
	require.Equal(t, Limit{4, 24 * time.Hour}, res.Limit)
	require.Equal(t, 7, s[0].Allow("k", 0).Remaining)

	none := Set(nil).Allow("k", 1)
	require.True(t, none.Allowed && !none.Limited(), "an empty set limits nothing")
}

func TestTighter(t *testing.T) {
	l := Limit{10, time.Minute}
	ok := func(rem int, reset time.Duration) Result {
		return Result{Limit: l, Allowed: true, Remaining: rem, Reset: reset}
	}
	no := func(reset time.Duration) Result { return Result{Limit: l, Reset: reset} }
	cases := []struct {
		name string
		a, b Result
		want bool
	}{
		{"anything beats no limit", ok(9, time.Second), Result{}, true},
		{"no limit beats nothing", Result{}, ok(9, time.Second), false},
		{"a refusal beats an allowance", no(time.Second), ok(0, time.Hour), true},
		{"an allowance does not beat a refusal", ok(0, time.Hour), no(time.Second), false},
		{"the longer refusal wins", no(time.Hour), no(time.Minute), true},
		{"fewer remaining wins", ok(1, time.Second), ok(2, time.Hour), true},
		{"same remaining: the later reset wins", ok(1, time.Hour), ok(1, time.Minute), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Tighter(tc.a, tc.b))
		})
	}
}

func TestParseLimits(t *testing.T) {
	cases := []struct {
		in   string
		want []Limit
		err  bool
	}{
		{"3000/5m", []Limit{{3000, 5 * time.Minute}}, false},
		{" 30/5m, 300/24h ", []Limit{{30, 5 * time.Minute}, {300, 24 * time.Hour}}, false},
		{"35000/1d", []Limit{{35000, 24 * time.Hour}}, false},
		{"off", nil, false},
		{"", nil, false},
		{"3000", nil, true},
		{"x/5m", nil, true},
		{"0/5m", nil, true},
		{"-1/5m", nil, true},
		{"10/0s", nil, true},
		{"10/500ms", nil, true},
		{"10/five", nil, true},
		{"10/5m,", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLimits(tc.in)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			again, err := ParseLimits(FormatLimits(got))
			require.NoError(t, err)
			require.Equal(t, got, again, "FormatLimits round-trips")
		})
	}
	require.Equal(t, "3000/5m,35000/24h,5/90s", FormatLimits([]Limit{{3000, 5 * time.Minute}, {35000, 24 * time.Hour}, {5, 90 * time.Second}}))
}

func TestHeaders(t *testing.T) {
	cases := []struct {
		name                                   string
		res                                    Result
		limit, remaining, reset, policy, retry string
	}{
		{"global", Result{Limit: Limit{3000, 5 * time.Minute}, Allowed: true, Remaining: 2999, Reset: 5 * time.Minute},
			"3000", "2999", "300", "3000;w=300", "300"},
		{"partial seconds round up", Result{Limit: Limit{5, time.Minute}, Remaining: 0, Reset: 1500 * time.Millisecond},
			"5", "0", "2", "5;w=60", "2"},
		{"retry is never 0", Result{Limit: Limit{5, time.Minute}, Remaining: 0, Reset: 0},
			"5", "0", "0", "5;w=60", "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			SetHeaders(h, tc.res)
			require.Equal(t, tc.limit, h.Get("RateLimit-Limit"))
			require.Equal(t, tc.remaining, h.Get("RateLimit-Remaining"))
			require.Equal(t, tc.reset, h.Get("RateLimit-Reset"))
			require.Equal(t, tc.policy, h.Get("RateLimit-Policy"))
			require.Equal(t, tc.retry, RetryAfter(tc.res))
		})
	}
	h := http.Header{}
	SetHeaders(h, Result{})
	require.Empty(t, h, "no limit, no headers")
}

func TestExpiredKeysAreDropped(t *testing.T) {
	clk := newClock()
	lim := New(Limit{5, time.Minute}, Options{Now: clk.Now})
	for i := range 1000 {
		lim.Allow("k"+strconv.Itoa(i), 1)
	}
	require.Equal(t, 1000, lim.Len())
	clk.Advance(59 * time.Second)
	for i := range 200 {
		lim.Allow("fresh"+strconv.Itoa(i), 1)
	}
	require.Equal(t, 1200, lim.Len())
	clk.Advance(time.Second)
	require.Equal(t, 200, lim.Len(), "the first thousand windows ended")
	clk.Advance(time.Minute)
	require.Equal(t, 0, lim.Len())
	require.True(t, lim.Allow("k1", 5).Allowed, "an ended window's key starts afresh")
}

func TestEvictsTheOldestWhenFull(t *testing.T) {
	clk := newClock()
	lim := New(Limit{2, time.Hour}, Options{Now: clk.Now, MaxKeys: shardCount}) // one key per shard
	require.True(t, lim.Allow("old", 2).Allowed)
	require.False(t, lim.Allow("old", 1).Allowed)
	// Fill every shard with newer keys: "old" is evicted from its shard.
	for i := range 100 {
		clk.Advance(time.Second)
		lim.Allow("new"+strconv.Itoa(i), 1)
		require.LessOrEqual(t, lim.Len(), shardCount)
	}
	require.True(t, lim.Allow("old", 1).Allowed, "an evicted key starts a fresh window")
}

// TestBoundedMemory feeds 100,000 distinct client addresses through a limiter capped at
// 10,000 keys: it never tracks more than the cap, and its heap stays small.
func TestBoundedMemory(t *testing.T) {
	const maxKeys = 10_000
	clk := newClock()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	lim := New(Limit{3000, 5 * time.Minute}, Options{Now: clk.Now, MaxKeys: maxKeys})
	for i := range 100_000 {
		ip := "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
		require.True(t, lim.Allow(ip, 1).Allowed)
		if i%10_000 == 0 {
			require.LessOrEqual(t, lim.Len(), maxKeys)
		}
	}
	require.LessOrEqual(t, lim.Len(), maxKeys)
	require.Greater(t, lim.Len(), maxKeys/2, "the cap is shared by the shards, not wasted")
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("tracked %d keys; heap grew %d KB", lim.Len(), grown/1024)
	// ~10,000 entries of a short key: well under 4 MB (unbounded it would be ~10x that).
	require.Less(t, grown, int64(4<<20))
	runtime.KeepAlive(lim)
}

func TestConcurrentUseKeepsCount(t *testing.T) {
	lim := New(Limit{1000, time.Hour}, Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for range 200 {
				if lim.Allow("shared", 1).Allowed {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	require.Equal(t, 1000, allowed, "exactly the budget, never more")
}

// BenchmarkAllow is the cost every XRPC request pays for the global limit.
func BenchmarkAllow(b *testing.B) {
	lim := New(Limit{1 << 30, 5 * time.Minute}, Options{})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "192.0.2." + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			lim.Allow(keys[i%len(keys)], 1)
			i++
		}
	})
}
