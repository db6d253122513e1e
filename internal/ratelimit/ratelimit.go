// Package ratelimit counts weighted requests per key in fixed windows, in memory, with
// a hard cap on how many keys it tracks.
//
// It is written here rather than taken from a library because none of the candidates
// gives all of weighted consumption, bounded memory and the numbers the RateLimit-*
// headers need: golang.org/x/time/rate is one token bucket with no keyed store (a map of
// them would still need eviction, and a bucket has no window to report);
// github.com/go-chi/httprate and github.com/ulule/limiter/v3 (memory store) keep a map
// that only shrinks when entries expire, so many distinct clients within one window grow
// it without limit, and ulule's store runs a cleaner goroutine tied to a finalizer.
//
// A window starts at a key's first consumption and lasts Limit.Window (as the reference
// PDS's rate-limiter-flexible does). Expiry is lazy: every operation on a shard first
// drops the entries whose window ended, so there is no background goroutine to own.
// Because every key of one Limiter has the same window length, the order in which
// windows end is the order in which they started: one FIFO queue per shard gives both
// the expired entries (at its front) and, when the shard is full, the oldest entry to
// evict. Evicting forgets that key's count (it starts a fresh window), which is the
// price of bounded memory under a flood of distinct keys.
package ratelimit

import (
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limit is a budget of Points per Window.
type Limit struct {
	Points int
	Window time.Duration
}

// Policy is the limit as the RateLimit-Policy header writes it: "3000;w=300".
func (l Limit) Policy() string {
	return strconv.Itoa(l.Points) + ";w=" + strconv.FormatInt(int64(ceilSeconds(l.Window)), 10)
}

// String is the limit as flags write it: "3000/5m".
func (l Limit) String() string { return strconv.Itoa(l.Points) + "/" + formatWindow(l.Window) }

// Validate reports a limit that cannot be enforced.
func (l Limit) Validate() error {
	if l.Points <= 0 {
		return fmt.Errorf("limit %q: points must be positive", l.String())
	}
	if l.Window < time.Second {
		return fmt.Errorf("limit %q: window must be at least one second", l.String())
	}
	return nil
}

// ParseLimits reads a comma-separated list of POINTS/WINDOW limits ("30/5m,300/24h";
// WINDOW is a Go duration, or a number of days with a "d" suffix). "off" or "" is no
// limit at all (a nil list).
func ParseLimits(s string) ([]Limit, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "off") {
		return nil, nil
	}
	var out []Limit
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		pts, win, ok := strings.Cut(part, "/")
		if !ok {
			return nil, fmt.Errorf("limit %q: want POINTS/WINDOW, e.g. 3000/5m", part)
		}
		n, err := strconv.Atoi(strings.TrimSpace(pts))
		if err != nil {
			return nil, fmt.Errorf("limit %q: points: %w", part, err)
		}
		d, err := parseWindow(strings.TrimSpace(win))
		if err != nil {
			return nil, fmt.Errorf("limit %q: window: %w", part, err)
		}
		l := Limit{Points: n, Window: d}
		if err := l.Validate(); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// FormatLimits is the inverse of ParseLimits.
func FormatLimits(ls []Limit) string {
	if len(ls) == 0 {
		return "off"
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.String()
	}
	return strings.Join(parts, ",")
}

func parseWindow(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, err)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// formatWindow writes whole hours, minutes or seconds the way a person would ("5m",
// "24h"), and anything else as Go does.
func formatWindow(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d > 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d > 0 && d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// ceilSeconds rounds up: a client told "0 seconds" would retry too early.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// Result is the state of one key's window after a consumption.
type Result struct {
	Limit Limit
	// Allowed is false when the points did not fit; refused points are not counted.
	Allowed bool
	// Remaining is what is left of the budget in this window.
	Remaining int
	// Reset is how long until the window ends and the full budget is back.
	Reset time.Duration
	// end identifies the window (for Set's refunds): nanoseconds since the limiter's epoch.
	end int64
}

// Limited reports whether the result came from a limit (the zero Result did not).
func (r Result) Limited() bool { return r.Limit.Points > 0 }

// Tighter reports whether a is more constraining than b, for the one limit a response
// reports when several apply: a refusal beats an allowance (and among refusals the one
// that lasts longer, since the client must wait for it); otherwise the smaller
// remaining budget wins, then the later reset.
func Tighter(a, b Result) bool {
	switch {
	case !a.Limited():
		return false
	case !b.Limited():
		return true
	case a.Allowed != b.Allowed:
		return !a.Allowed
	case !a.Allowed:
		return a.Reset > b.Reset
	case a.Remaining != b.Remaining:
		return a.Remaining < b.Remaining
	default:
		return a.Reset > b.Reset
	}
}

// Options tunes a Limiter.
type Options struct {
	// MaxKeys caps the keys tracked at once (0: DefaultMaxKeys). Past it the oldest
	// window is forgotten.
	MaxKeys int
	// Now is the clock (nil: time.Now). Tests move it.
	Now func() time.Time
}

// DefaultMaxKeys bounds a limiter to about 3 MB (an entry with a short key such as an
// IP address costs some 150 bytes) while leaving room for far more distinct clients per
// window than a self-hosted PDS sees.
const DefaultMaxKeys = 20_000

const shardCount = 16

// Limiter enforces one Limit for many keys. It is safe for concurrent use.
type Limiter struct {
	limit  Limit
	now    func() time.Time
	epoch  time.Time
	seed   maphash.Seed
	perCap int
	shards [shardCount]shard
}

type shard struct {
	mu      sync.Mutex
	windows map[string]window
	// queue holds one item per entry of windows, in the order their windows end;
	// queue[head:] is live (the consumed prefix is reclaimed when it grows).
	queue []queued
	head  int
}

type window struct {
	used int
	end  int64 // nanoseconds since the limiter's epoch
}

type queued struct {
	key string
	end int64
}

// New returns a Limiter for l. l must be valid (Limit.Validate).
func New(l Limit, opts Options) *Limiter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	perCap := opts.MaxKeys / shardCount
	if perCap < 1 {
		perCap = 1
	}
	lim := &Limiter{limit: l, now: opts.Now, epoch: opts.Now(), seed: maphash.MakeSeed(), perCap: perCap}
	for i := range lim.shards {
		lim.shards[i].windows = make(map[string]window)
	}
	return lim
}

// Limit is the limit this limiter enforces.
func (lim *Limiter) Limit() Limit { return lim.limit }

// Allow consumes points for key if they fit in the key's current window.
func (lim *Limiter) Allow(key string, points int) Result {
	return lim.consume(key, points, false)
}

// Add consumes points for key even past the limit (for a cost only known after the
// work was done); later requests are refused until the window ends.
func (lim *Limiter) Add(key string, points int) Result {
	return lim.consume(key, points, true)
}

// Refund gives back points an earlier Allow consumed, if that window is still current.
func (lim *Limiter) Refund(key string, points int, res Result) {
	sh := lim.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if w, ok := sh.windows[key]; ok && w.end == res.end {
		w.used = max(0, w.used-points)
		sh.windows[key] = w
	}
}

// Len is the number of keys tracked now (it drops the ended windows first).
func (lim *Limiter) Len() int {
	now := int64(lim.now().Sub(lim.epoch))
	n := 0
	for i := range lim.shards {
		sh := &lim.shards[i]
		sh.mu.Lock()
		sh.expire(now)
		n += len(sh.windows)
		sh.mu.Unlock()
	}
	return n
}

func (lim *Limiter) shard(key string) *shard {
	return &lim.shards[maphash.String(lim.seed, key)%shardCount]
}

func (lim *Limiter) consume(key string, points int, force bool) Result {
	if points < 0 {
		points = 0
	}
	now := int64(lim.now().Sub(lim.epoch))
	sh := lim.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.expire(now)
	w, ok := sh.windows[key]
	if !ok {
		w = window{end: now + int64(lim.limit.Window)}
	}
	if !force && w.used+points > lim.limit.Points {
		// Refused: nothing is counted, and a key that was not tracked stays untracked.
		return lim.result(w, now, false)
	}
	if !ok {
		if points == 0 {
			return lim.result(w, now, true)
		}
		if len(sh.windows) >= lim.perCap {
			sh.evictOldest()
		}
		sh.queue = append(sh.queue, queued{key: key, end: w.end})
	}
	w.used += points
	sh.windows[key] = w
	return lim.result(w, now, true)
}

func (lim *Limiter) result(w window, now int64, allowed bool) Result {
	return Result{
		Limit:     lim.limit,
		Allowed:   allowed,
		Remaining: max(0, lim.limit.Points-w.used),
		Reset:     time.Duration(w.end - now),
		end:       w.end,
	}
}

// expire drops the entries whose window ended by now: they are at the queue's front.
func (sh *shard) expire(now int64) {
	for sh.head < len(sh.queue) && sh.queue[sh.head].end <= now {
		sh.pop()
	}
	sh.compact()
}

func (sh *shard) evictOldest() {
	if sh.head < len(sh.queue) {
		sh.pop()
	}
}

func (sh *shard) pop() {
	q := sh.queue[sh.head]
	if w, ok := sh.windows[q.key]; ok && w.end == q.end {
		delete(sh.windows, q.key)
	}
	sh.queue[sh.head] = queued{} // release the key string
	sh.head++
}

// compact reclaims the consumed front of the queue once it is half of it, keeping the
// queue at most about twice the tracked keys (amortized O(1) per operation).
func (sh *shard) compact() {
	if sh.head == 0 {
		return
	}
	if sh.head == len(sh.queue) {
		sh.queue, sh.head = sh.queue[:0], 0
		return
	}
	if sh.head >= 64 && sh.head*2 >= len(sh.queue) {
		n := copy(sh.queue, sh.queue[sh.head:])
		clear(sh.queue[n:])
		sh.queue, sh.head = sh.queue[:n], 0
	}
}

// Set is several limits on the same keys (e.g. per hour and per day): a consumption
// passes only when every limit has room for it, and then counts against all of them.
type Set []*Limiter

// NewSet builds one Limiter per limit.
func NewSet(limits []Limit, opts Options) Set {
	s := make(Set, len(limits))
	for i, l := range limits {
		s[i] = New(l, opts)
	}
	return s
}

// Allow consumes points for key from every limit, or from none: when one refuses, what
// the others already took is refunded. The result is the tightest one (Tighter); an
// empty set allows everything (a Result that is not Limited).
func (s Set) Allow(key string, points int) Result {
	tightest := Result{Allowed: true}
	var buf [4]Result
	taken := buf[:0]
	for _, lim := range s {
		res := lim.Allow(key, points)
		if !res.Allowed {
			for j, prev := range taken {
				s[j].Refund(key, points, prev)
			}
			return res
		}
		taken = append(taken, res)
		if Tighter(res, tightest) {
			tightest = res
		}
	}
	return tightest
}

// Add consumes points for key from every limit even past them; the tightest result.
func (s Set) Add(key string, points int) Result {
	tightest := Result{Allowed: true}
	for _, lim := range s {
		if res := lim.Add(key, points); Tighter(res, tightest) {
			tightest = res
		}
	}
	return tightest
}
