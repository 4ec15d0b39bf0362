package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/serve"
)

// HostileOptions sets up `mtbert bench hostile`: well-behaved clients measured on a quiet
// in-process server on 127.0.0.1, then again while attackers of four kinds run against it.
type HostileOptions struct {
	// The model, as in ServeOptions: a checkpoint folder, or a random model of these sizes.
	Model                     string
	Layers, Hidden, K, Labels int
	MaxLen                    int
	Vocab                     string
	Notes                     []string
	SynthNotes, SynthWords    int
	// Clients is the number of well-behaved closed-loop clients (default 4).
	Clients int
	// Duration is the length of each phase, quiet and attack (default 10s).
	Duration time.Duration
	// The server's limits (defaults: queue 16, body 1 MiB, 1<<18 sub-words, body timeout 2s,
	// deadline 30s, batches of 2048 padded sub-words gathered for 5ms).
	MaxQueue, MaxBatchTokens, MaxTokens int
	MaxBody                             int64
	MaxWait, Timeout, BodyTimeout       time.Duration
	// The attackers, each a loop until the attack phase ends (0: the defaults 4, 16, 4,
	// 32; negative: none of that kind):
	// Oversize alternates a body over MaxBody and one just under it of one-letter words
	// (far over MaxTokens); Slow sends a body one byte every 500ms until the server drops it;
	// Abandon sends a long note and gives up after 50ms; Flood sends short notes back to back.
	Oversize, Slow, Abandon, Flood int
	Seed                           uint64
	// Log, when not nil, receives a line per phase as it ends.
	Log io.Writer
}

func (o *HostileOptions) defaults() {
	modelDefaults(&o.Layers, &o.Hidden, &o.K, &o.Labels, &o.MaxLen, &o.SynthNotes, &o.SynthWords)
	def := defaultInt
	def(&o.Clients, 4)
	def(&o.MaxQueue, 16)
	def(&o.MaxBatchTokens, 2048)
	def(&o.MaxTokens, 1<<18)
	for _, a := range []struct {
		p *int
		v int
	}{{&o.Oversize, 4}, {&o.Slow, 16}, {&o.Abandon, 4}, {&o.Flood, 32}} {
		if *a.p == 0 {
			*a.p = a.v
		}
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	defDur(&o.Duration, 10*time.Second)
	defDur(&o.MaxWait, 5*time.Millisecond)
	defDur(&o.Timeout, 30*time.Second)
	defDur(&o.BodyTimeout, 2*time.Second)
}

// HostileResult is the report of `mtbert bench hostile`.
type HostileResult struct {
	Model        string  `json:"model"`
	Layers       int     `json:"layers"`
	Hidden       int     `json:"hidden"`
	Notes        int     `json:"notes"`
	Clients      int     `json:"clients"`
	MaxQueue     int     `json:"max_queue"`
	MaxBody      int64   `json:"max_body"`
	MaxTokens    int     `json:"max_tokens"`
	BodyTimeoutS float64 `json:"body_timeout_s"`
	Threads      int     `json:"threads"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
	// Quiet and Attack are the well-behaved clients' figures alone and under attack.
	Quiet, Attack HostilePhase
	// Attackers counts each attacker kind's outcomes by status code ("abandoned" when the
	// client gave up first, "transport" when the connection failed).
	Attackers map[string]map[string]int `json:"attackers"`
	// Memory of the process (server and clients), sampled every 20ms: idle before the quiet
	// phase, peaks during the attack; VmHWM is the kernel's peak RSS of the whole run.
	IdleRSSMB  float64 `json:"idle_rss_mb"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	IdleHeapMB float64 `json:"idle_heap_inuse_mb"`
	PeakHeapMB float64 `json:"peak_heap_inuse_mb"`
	VmHWMMB    float64 `json:"vmhwm_mb"`
}

// HostilePhase is the well-behaved clients' side of one phase.
type HostilePhase struct {
	Requests   int            `json:"requests"`
	OK         int            `json:"ok"`
	FailedBy   map[string]int `json:"failed_by,omitempty"`
	BadAnswers int            `json:"bad_answers"`
	NotesPerS  float64        `json:"notes_per_s"`
	P50Ms      float64        `json:"ok_p50_ms"`
	P99Ms      float64        `json:"ok_p99_ms"`
	MaxMs      float64        `json:"ok_max_ms"`
}

// hostileModel returns the extractor of o (serveModel's: its checkpoint, or a random model over
// notes), the encoder's config and the model's description.
func hostileModel(o HostileOptions, notes []string) (*mtl.Extractor, bert.Config, string, error) {
	var res ServeResult
	ex, _, err := serveModel(ServeOptions{Model: o.Model, Layers: o.Layers, Hidden: o.Hidden, K: o.K, Labels: o.Labels, MaxLen: o.MaxLen, Vocab: o.Vocab, Seed: o.Seed}, notes, &res)
	if err != nil {
		return nil, bert.Config{}, "", err
	}
	return ex, ex.Model().Encoder.Cfg, res.Model, nil
}

// Hostile runs the hostile benchmark: the quiet phase, then the attack phase, on one server.
func Hostile(o HostileOptions) (*HostileResult, error) {
	o.defaults()
	notes := o.Notes
	if len(notes) == 0 {
		var err error
		if notes, err = SynthNotes(o.Seed, o.SynthNotes, o.SynthWords); err != nil {
			return nil, err
		}
	}
	ex, encCfg, name, err := hostileModel(o, notes)
	if err != nil {
		return nil, err
	}
	res := &HostileResult{Model: name, Layers: encCfg.NumHiddenLayers, Hidden: encCfg.HiddenSize, Notes: len(notes), Clients: o.Clients,
		MaxQueue: o.MaxQueue, MaxBody: o.MaxBody, MaxTokens: o.MaxTokens, BodyTimeoutS: o.BodyTimeout.Seconds(),
		Threads: kernels.Threads(), GOMAXPROCS: runtime.GOMAXPROCS(0), Attackers: map[string]map[string]int{}}
	ls, err := startServer(ex, serve.Config{MaxBatchTokens: o.MaxBatchTokens, MaxWait: o.MaxWait, MaxQueue: o.MaxQueue,
		MaxBody: o.MaxBody, MaxTokens: o.MaxTokens, Timeout: o.Timeout, BodyTimeout: o.BodyTimeout})
	if err != nil {
		return nil, err
	}
	defer ls.close()
	bodies := make([][]byte, len(notes))
	for i, n := range notes {
		bodies[i] = extractBody(n)
	}
	client := newClient(o.Timeout + 10*time.Second)
	defer client.CloseIdleConnections()
	send(client, ls.base, request{id: "warmup", note: notes[0], body: bodies[0]})

	runtime.GC()
	idle := readMem()
	res.IdleRSSMB, res.IdleHeapMB = idle.rss, idle.heap
	res.Quiet = wellBehaved(client, ls.base, o, notes, bodies, nil)
	logf(o.Log, "quiet:  %d requests, %d ok, p99 %.1f ms", res.Quiet.Requests, res.Quiet.OK, res.Quiet.P99Ms)

	ctx, cancel := context.WithTimeout(context.Background(), o.Duration)
	defer cancel()
	var mu sync.Mutex
	count := func(kind, status string) {
		mu.Lock()
		defer mu.Unlock()
		if res.Attackers[kind] == nil {
			res.Attackers[kind] = map[string]int{}
		}
		res.Attackers[kind][status]++
	}
	var wg sync.WaitGroup
	attack := func(n int, kind string, f func(ctx context.Context, i int) string) {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if st := f(ctx, i); st != "" {
						count(kind, st)
					}
				}
			}()
		}
	}
	words := []byte(`{"text": "` + strings.Repeat("a ", int(o.MaxBody-64)/2) + `"}`)
	over := []byte(`{"text": "` + strings.Repeat("x", int(o.MaxBody)) + `"}`)
	attackClient := newClient(o.Timeout + 10*time.Second)
	defer attackClient.CloseIdleConnections()
	attack(o.Oversize, "oversize", func(ctx context.Context, i int) string {
		b := words
		if i%2 == 1 {
			b = over
		}
		return post(ctx, attackClient, ls.base, b, 0)
	})
	long := extractBody(strings.Join(notes[:min(len(notes), 20)], "\n\n"))
	attack(o.Abandon, "abandon", func(ctx context.Context, i int) string {
		return post(ctx, attackClient, ls.base, long, 50*time.Millisecond)
	})
	attack(o.Flood, "flood", func(ctx context.Context, i int) string {
		return post(ctx, attackClient, ls.base, bodies[i%len(bodies)], 0)
	})
	host := strings.TrimPrefix(ls.base, "http://")
	attack(o.Slow, "slow", func(ctx context.Context, i int) string { return slowBody(ctx, host, o.BodyTimeout) })

	peak := idle
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for ctx.Err() == nil {
			m := readMem()
			peak.rss, peak.heap = max(peak.rss, m.rss), max(peak.heap, m.heap)
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	res.Attack = wellBehaved(client, ls.base, o, notes, bodies, ctx)
	cancel()
	wg.Wait()
	<-sampled
	res.PeakRSSMB, res.PeakHeapMB, res.VmHWMMB = peak.rss, peak.heap, procStatusMB("VmHWM:")
	logf(o.Log, "attack: %d requests, %d ok, p99 %.1f ms; attackers %v", res.Attack.Requests, res.Attack.OK, res.Attack.P99Ms, res.Attackers)
	return res, nil
}

func logf(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", a...)
	}
}

// wellBehaved runs o.Clients closed-loop clients for o.Duration (or until ctx is done, when
// not nil) and summarises their answers.
func wellBehaved(c *http.Client, base string, o HostileOptions, notes []string, bodies [][]byte, ctx context.Context) HostilePhase {
	end := time.Now().Add(o.Duration)
	var mu sync.Mutex
	var lat []time.Duration
	ph := HostilePhase{FailedBy: map[string]int{}}
	var wg sync.WaitGroup
	t0 := time.Now()
	for k := range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; time.Now().Before(end) && (ctx == nil || ctx.Err() == nil); i += o.Clients {
				j := i % len(notes)
				a := send(c, base, request{id: "ok-" + strconv.Itoa(i), note: notes[j], body: bodies[j]})
				mu.Lock()
				ph.Requests++
				switch {
				case a.transport != nil:
					ph.FailedBy["transport"]++
				case a.code != 200:
					ph.FailedBy[strconv.Itoa(a.code)]++
				case a.bad:
					ph.BadAnswers++
				default:
					ph.OK++
					lat = append(lat, a.latency)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	ph.NotesPerS = float64(ph.OK) / time.Since(t0).Seconds()
	ph.P50Ms, ph.P99Ms = percentile(lat, 0.5), percentile(lat, 0.99)
	if len(lat) > 0 {
		ph.MaxMs = float64(lat[len(lat)-1]) / 1e6
	}
	return ph
}

// post sends body to /v1/extract, giving up after giveUp when positive, and returns the
// status code, "abandoned" or "transport" ("" when ctx ended the phase first).
func post(ctx context.Context, c *http.Client, base string, body []byte, giveUp time.Duration) string {
	rctx := ctx
	if giveUp > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, giveUp)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(rctx, "POST", base+"/v1/extract", bytes.NewReader(body))
	if err != nil {
		return "transport"
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	switch {
	case err != nil && ctx.Err() != nil:
		return ""
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		return "abandoned"
	case err != nil:
		return "transport"
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

// slowBody opens a connection to host, announces a 200-byte body and sends it one byte every
// 500ms; it returns the status line's code the server answers with ("" when ctx ended first).
func slowBody(ctx context.Context, host string, bodyTimeout time.Duration) string {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		if ctx.Err() != nil {
			return ""
		}
		return "transport"
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(bodyTimeout + 10*time.Second))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	fmt.Fprintf(conn, "POST /v1/extract HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{", host)
	go func() {
		for range 199 {
			time.Sleep(500 * time.Millisecond)
			if _, err := conn.Write([]byte{' '}); err != nil {
				return
			}
		}
	}()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		if ctx.Err() != nil {
			return ""
		}
		return "transport"
	}
	if f := strings.Fields(line); len(f) >= 2 {
		return f[1]
	}
	return "transport"
}

// WriteHostileTable writes r as text.
func WriteHostileTable(w io.Writer, r *HostileResult) {
	fmt.Fprintf(w, "model: %s; %d well-behaved clients; server: max-queue %d, max-body %d, max-tokens %d, body-timeout %gs; %d threads, GOMAXPROCS %d\n",
		r.Model, r.Clients, r.MaxQueue, r.MaxBody, r.MaxTokens, r.BodyTimeoutS, r.Threads, r.GOMAXPROCS)
	fmt.Fprintf(w, "%-7s %9s %6s %9s %9s %9s %9s  %s\n", "phase", "requests", "ok", "notes/s", "p50 ms", "p99 ms", "max ms", "failed")
	for _, p := range []struct {
		name string
		ph   HostilePhase
	}{{"quiet", r.Quiet}, {"attack", r.Attack}} {
		fmt.Fprintf(w, "%-7s %9d %6d %9.1f %9.1f %9.1f %9.1f  %s\n", p.name, p.ph.Requests, p.ph.OK, p.ph.NotesPerS, p.ph.P50Ms, p.ph.P99Ms, p.ph.MaxMs, codes(p.ph.FailedBy))
	}
	kinds := make([]string, 0, len(r.Attackers))
	for k := range r.Attackers {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "attacker %-9s %s\n", k, codes(r.Attackers[k]))
	}
	fmt.Fprintf(w, "memory: RSS %.0f MB idle, %.0f MB peak under attack (VmHWM %.0f MB); heap in use %.0f MB idle, %.0f MB peak\n",
		r.IdleRSSMB, r.PeakRSSMB, r.VmHWMMB, r.IdleHeapMB, r.PeakHeapMB)
}

// codes writes a status count map as "200: 5, 503: 2" in order.
func codes(m map[string]int) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, m[k])
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}
