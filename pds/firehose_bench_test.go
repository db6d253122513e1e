package pds_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/ipfs/go-cid"
)

// Fan-out benchmark parameters: writers create records at about benchWriteRate per
// second, spread over benchAccounts accounts, benchWrites in all.
const (
	benchAccounts  = 8
	benchWriteRate = 1000
	benchWrites    = 2000
	// benchWriters is how many concurrent writer goroutines share the rate (several per
	// account, so a slow acknowledgement does not lower the offered rate).
	benchWriters = 16
	// benchSampled subscribers decode every frame (latency, order); the others count.
	benchSampled = 20
)

// BenchmarkFirehoseFanout measures subscribeRepos fan-out over loopback against the real
// in-process PDS: N live subscribers while writers create records at ~1000/s. Run with
// -benchtime=1x. RSS is the whole test process (server and clients) as read from
// /proc/self/status.
func BenchmarkFirehoseFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runFanout(b, n)
			}
		})
	}
}

// benchPDS is a PDS with an embedded PLC directory on 127.0.0.1 for benchmarks.
type benchPDS struct {
	base   string
	client *http.Client
}

// startBenchPDS starts the in-process PDS, or with HEARTH_BENCH_PDS=URL uses a running
// `hearth serve` (loopback, rate limits bypassed for 127.0.0.1): the subscribers and
// writers are then in this process and the server in its own, as a relay sees it.
func startBenchPDS(b *testing.B) *benchPDS {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	if u := os.Getenv("HEARTH_BENCH_PDS"); u != "" {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			b.Fatalf("HEARTH_BENCH_PDS must be http://127.0.0.1:PORT, not %q", u)
		}
		return &benchPDS{base: u, client: client}
	}
	n := testnet.Start(b)
	return &benchPDS{base: n.URL(), client: client}
}

func (p *benchPDS) post(nsid string, body any, token string) (map[string]any, error) {
	js, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, p.base+"/xrpc/"+nsid, bytes.NewReader(js))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d: %s", nsid, res.StatusCode, out)
	}
	var m map[string]any
	return m, json.Unmarshal(out, &m)
}

// fanoutSub is one benchmark subscriber.
type fanoutSub struct {
	conn    *websocket.Conn
	sampled bool
	count   int
	missed  int // gaps and duplicates seen by a sampled subscriber
	last    time.Time
	arrived map[string]time.Time // commit CID -> delivery time (sampled only)
	err     error
}

func (s *fanoutSub) run(want int) {
	var prev int64
	for s.count < want {
		s.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		if !s.sampled {
			_, r, err := s.conn.NextReader()
			if err != nil {
				s.err = err
				return
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				s.err = err
				return
			}
			s.count++
			continue
		}
		_, msg, err := s.conn.ReadMessage()
		if err != nil {
			s.err = err
			return
		}
		now := time.Now()
		ev, err := firehose.Decode(msg)
		if err != nil || ev.Commit == nil {
			s.err = fmt.Errorf("unexpected frame %v: %v", ev, err)
			return
		}
		if prev != 0 && ev.Seq != prev+1 {
			s.missed++
		}
		prev = ev.Seq
		s.arrived[cid.Cid(ev.Commit.Commit).String()] = now
		s.count++
	}
	s.last = time.Now()
}

// rssMB reads the server's resident set size: this process's, or with
// HEARTH_BENCH_PDS_PID that of the external server.
func rssMB() float64 {
	status := "/proc/self/status"
	if pid := os.Getenv("HEARTH_BENCH_PDS_PID"); pid != "" {
		status = "/proc/" + pid + "/status"
	}
	f, err := os.Open(status)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func runFanout(b *testing.B, n int) {
	b.StopTimer()
	p := startBenchPDS(b)
	// Handles unique per run, so runs against one external server do not collide.
	runID := strconv.FormatInt(time.Now().UnixNano()%(1<<30), 36)
	type acct struct{ did, token string }
	var accts []acct
	for i := 0; i < benchAccounts; i++ {
		m, err := p.post("com.atproto.server.createAccount", map[string]any{"handle": fmt.Sprintf("bench%s%d.test", runID, i), "password": "pw-bench", "email": fmt.Sprintf("b%s%d@example.com", runID, i)}, "")
		if err != nil {
			b.Fatal(err)
		}
		accts = append(accts, acct{m["did"].(string), m["accessJwt"].(string)})
	}

	// Connect every subscriber (live, after the accounts exist) before writing.
	wsURL, err := firehose.SubscribeURL(p.base, nil)
	if err != nil {
		b.Fatal(err)
	}
	subs := make([]*fanoutSub, n)
	var dialErr atomic.Value
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 64 << 10}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				conn, _, err := d.Dial(wsURL, nil)
				if err != nil {
					dialErr.Store(err)
					return
				}
				conn.SetReadLimit(firehose.MaxMessageSize)
				subs[i] = &fanoutSub{conn: conn, sampled: i < benchSampled, arrived: map[string]time.Time{}}
			}
		}()
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		b.Fatal("dialing subscribers: ", err)
	}
	defer func() {
		for _, s := range subs {
			s.conn.Close()
		}
	}()

	// RSS sampler.
	var peakRSS atomic.Uint64
	stopRSS := make(chan struct{})
	rssDone := make(chan struct{})
	go func() {
		defer close(rssDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := uint64(rssMB()); v > peakRSS.Load() {
				peakRSS.Store(v)
			}
			select {
			case <-stopRSS:
				return
			case <-t.C:
			}
		}
	}()

	b.StartTimer()
	start := time.Now()
	var subsWG sync.WaitGroup
	for _, s := range subs {
		subsWG.Add(1)
		go func() { defer subsWG.Done(); s.run(benchWrites) }()
	}

	// Writers: benchWriters goroutines spread over the accounts, each paced at
	// benchWriteRate/benchWriters.
	acks := make([]map[string]time.Time, benchWriters)
	sent := make([]map[string]time.Time, benchWriters) // when each acknowledged write was sent
	var writeErr atomic.Value
	var writers sync.WaitGroup
	per := benchWrites / benchWriters
	interval := time.Second * benchWriters / benchWriteRate
	for w := range benchWriters {
		acks[w] = make(map[string]time.Time, per)
		sent[w] = make(map[string]time.Time, per)
		a := accts[w%len(accts)]
		writers.Add(1)
		go func() {
			defer writers.Done()
			time.Sleep(interval * time.Duration(w) / benchWriters) // stagger the goroutines
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := 0; i < per; i++ {
				<-tick.C
				t0 := time.Now()
				m, err := p.post("com.atproto.repo.createRecord", map[string]any{"repo": a.did, "collection": "app.bsky.feed.post",
					"record": map[string]any{"$type": "app.bsky.feed.post", "text": fmt.Sprintf("fan-out %d/%d", w, i), "createdAt": time.Now().UTC().Format(time.RFC3339Nano)}}, a.token)
				if err != nil {
					writeErr.Store(err)
					return
				}
				c := m["commit"].(map[string]any)["cid"].(string)
				acks[w][c], sent[w][c] = time.Now(), t0
			}
		}()
	}
	writers.Wait()
	writesDone := time.Now()
	if err, _ := writeErr.Load().(error); err != nil {
		b.Fatal("writing: ", err)
	}
	subsWG.Wait()
	b.StopTimer()
	close(stopRSS)
	<-rssDone

	acked, sentAt := map[string]time.Time{}, map[string]time.Time{}
	for w := range acks {
		for c, t := range acks[w] {
			acked[c], sentAt[c] = t, sent[w][c]
		}
	}
	var delivered, missed int
	var lastDelivery time.Time
	var lat, e2e []float64
	var beforeAck int
	for _, s := range subs {
		delivered += s.count
		missed += benchWrites - s.count + s.missed
		if s.err != nil {
			b.Logf("subscriber ended early after %d events: %v", s.count, s.err)
		}
		if s.last.After(lastDelivery) {
			lastDelivery = s.last
		}
		for c, at := range s.arrived {
			ack, ok := acked[c]
			if !ok {
				missed++ // a commit nobody wrote
				continue
			}
			// A frame may arrive before the HTTP response does: that counts as 0 ms.
			d := at.Sub(ack)
			if d < 0 {
				beforeAck++
			}
			lat = append(lat, max(0, float64(d)/float64(time.Millisecond)))
			e2e = append(e2e, float64(at.Sub(sentAt[c]))/float64(time.Millisecond))
		}
	}
	slices.Sort(lat)
	slices.Sort(e2e)
	pct := func(xs []float64, q float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		return xs[min(len(xs)-1, int(q*float64(len(xs))))]
	}
	elapsed := lastDelivery.Sub(start).Seconds()
	b.ReportMetric(float64(delivered)/elapsed, "events/s")
	b.ReportMetric(float64(benchWrites)/writesDone.Sub(start).Seconds(), "writes/s")
	// ack->delivery (the HTTP answer reached the writer -> the frame reached a subscriber)
	// and send->delivery (the writer sent the request -> the frame arrived).
	b.ReportMetric(pct(lat, 0.50), "p50_ms")
	b.ReportMetric(pct(lat, 0.99), "p99_ms")
	b.ReportMetric(pct(e2e, 0.50), "p50_send_ms")
	b.ReportMetric(pct(e2e, 0.99), "p99_send_ms")
	b.ReportMetric(float64(missed), "missed")
	if len(lat) > 0 {
		b.ReportMetric(100*float64(beforeAck)/float64(len(lat)), "%before_ack")
	}
	b.ReportMetric(float64(peakRSS.Load()), "rss_MB")
	if missed > 0 {
		b.Errorf("%d events missed", missed)
	}
}
