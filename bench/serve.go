package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/serve"
	"github.com/mtbert/mtbert/mtl/synth"
)

// ServeOptions sets up `mtbert bench serve`: a load generator driving an in-process
// serve.Server over real HTTP on 127.0.0.1.
type ServeOptions struct {
	// Model is a checkpoint folder (mtl.LoadExtractor). Empty: a randomly initialised model of
	// Layers layers, Hidden units and K token-tagging heads of Labels labels (BIO tags over
	// (Labels-1)/2 types) with windows of MaxLen sub-words, over a vocabulary built from the
	// notes (Vocab, when set, is a vocab.txt to use instead).
	Model string
	// Int8 quantises the encoder's linear layers to int8 at load (bert.Model.QuantizeInt8);
	// an int8 checkpoint is int8 without it.
	Int8                      bool
	Layers, Hidden, K, Labels int
	MaxLen                    int
	Vocab                     string
	Notes                     []string
	SynthNotes, SynthWords    int
	Concurrency               []int
	Batching                  []bool
	Duration                  time.Duration
	Requests                  int
	Overload                  float64
	OverloadDuration          time.Duration
	MaxQueue, MaxBatchTokens  int
	MaxWait, Timeout          time.Duration
	MaxBody                   int64
	Seed                      uint64
	// OverloadRequests, when positive, is the number of overload requests (instead of
	// OverloadDuration's worth).
	OverloadRequests int
	// OversizeEvery makes every n-th overload request a body over MaxBody (0: none).
	OversizeEvery int
	// Log, when not nil, receives a line per phase as it ends.
	Log io.Writer
}

// defaultInt sets *p to v when *p is not positive.
func defaultInt(p *int, v int) {
	if *p <= 0 {
		*p = v
	}
}

// modelDefaults fills the random model's and the synthetic notes' sizes that are not set:
// BERT-base (12 layers, 768 wide), 8 ner heads of 9 labels, max_length 128, 200 notes of at
// least 150 words.
func modelDefaults(layers, hidden, k, labels, maxLen, notes, words *int) {
	for _, d := range []struct {
		p *int
		v int
	}{{layers, 12}, {hidden, 768}, {k, 8}, {labels, 9}, {maxLen, 128}, {notes, 200}, {words, 150}} {
		defaultInt(d.p, d.v)
	}
}

// defaults fills the zero fields of o with the command's defaults.
func (o *ServeOptions) defaults() {
	modelDefaults(&o.Layers, &o.Hidden, &o.K, &o.Labels, &o.MaxLen, &o.SynthNotes, &o.SynthWords)
	def := defaultInt
	def(&o.MaxQueue, 64)
	def(&o.MaxBatchTokens, 2048)
	if o.MaxWait <= 0 {
		o.MaxWait = 5 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	if len(o.Concurrency) == 0 {
		o.Concurrency = []int{1, 4, 16, 64}
	}
	if len(o.Batching) == 0 {
		o.Batching = []bool{true, false}
	}
	if o.Duration <= 0 && o.Requests <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.OverloadDuration <= 0 {
		o.OverloadDuration = max(o.Duration, 10*time.Second)
	}
}

// ServeResult is the report of `mtbert bench serve`.
type ServeResult struct {
	Model        string       `json:"model"`
	Weights      string       `json:"weights"` // "fp32" or "int8"
	Layers       int          `json:"layers"`
	Hidden       int          `json:"hidden"`
	NERHeads     int          `json:"ner_heads"`
	Notes        int          `json:"notes"`
	MeanChars    float64      `json:"mean_note_chars"`
	MeanSubwords float64      `json:"mean_note_subwords"`
	MaxQueue     int          `json:"max_queue"`
	MaxBatchTok  int          `json:"max_batch_tokens"`
	MaxWaitMs    float64      `json:"max_wait_ms"`
	Threads      int          `json:"threads"`
	GOMAXPROCS   int          `json:"gomaxprocs"`
	Phases       []ServePhase `json:"phases"`
	// Speedup is, per concurrency level measured both ways, notes/s with batching over notes/s
	// without, in the same run.
	Speedup  []ServeSpeedup `json:"speedup,omitempty"`
	Overload *ServeOverload `json:"overload,omitempty"`
}

// ServePhase is one closed-loop measurement: Concurrency clients, each sending its next
// request when the previous is answered.
type ServePhase struct {
	Batching    bool    `json:"batching"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	OK          int     `json:"ok"`
	Failed      int     `json:"failed"`
	Seconds     float64 `json:"seconds"`
	NotesPerS   float64 `json:"notes_per_s"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	// MeanBatchRequests is requests per batch and MeanWindowsPerPass windows (sequences) per
	// encoder pass, from the server's /metrics (mtbert_batch_requests, mtbert_windows_total
	// over mtbert_encoder_passes_total).
	MeanBatchRequests  float64 `json:"mean_batch_requests"`
	MeanWindowsPerPass float64 `json:"mean_windows_per_pass"`
	Passes             int64   `json:"encoder_passes"`
	BadAnswers         int     `json:"bad_answers"`
	// FailedBy counts the failed requests by status code ("transport" when no answer came).
	FailedBy map[string]int `json:"failed_by,omitempty"`
}

// ServeSpeedup compares batching on and off at one concurrency.
type ServeSpeedup struct {
	Concurrency int     `json:"concurrency"`
	On          float64 `json:"notes_per_s_on"`
	Off         float64 `json:"notes_per_s_off"`
	Ratio       float64 `json:"ratio"`
}

// ServeOverload is the open-loop overload phase: requests arrive at Factor times the
// capacity (the best notes/s measured with batching) for Seconds, whatever the answers.
type ServeOverload struct {
	Factor        float64        `json:"factor"`
	CapacityPerS  float64        `json:"capacity_notes_per_s"`
	OfferedPerS   float64        `json:"offered_per_s"`
	Seconds       float64        `json:"seconds"`
	DrainSeconds  float64        `json:"drain_seconds"`
	Sent          int            `json:"sent"`
	Answered      int            `json:"answered"`
	Status200     int            `json:"status_200"`
	Status503     int            `json:"status_503"`
	Status413     int            `json:"status_413"`
	StatusOther   int            `json:"status_other"`
	TransportErrs int            `json:"transport_errors"`
	Lost          int            `json:"lost"`
	Duplicated    int            `json:"duplicated"`
	WrongID       int            `json:"wrong_id"`
	No503Retry    int            `json:"503_without_retry_after"`
	BadAnswers    int            `json:"bad_answers"`
	OversizeSent  int            `json:"oversize_sent"`
	P50Ms         float64        `json:"ok_p50_ms"`
	P99Ms         float64        `json:"ok_p99_ms"`
	IdleHeapMB    float64        `json:"idle_heap_inuse_mb"`
	PeakHeapMB    float64        `json:"peak_heap_inuse_mb"`
	IdleRSSMB     float64        `json:"idle_rss_mb"`
	PeakRSSMB     float64        `json:"peak_rss_mb"`
	VmHWMMB       float64        `json:"vmhwm_mb"`
	HWMReset      bool           `json:"vmhwm_reset_before"`
	HeapRatio     float64        `json:"peak_over_idle_heap"`
	RSSRatio      float64        `json:"peak_over_idle_rss"`
	OtherCodes    map[string]int `json:"other_codes,omitempty"`
}

// LoadNotes reads a corpus for the load generator: a folder's *.txt files (one note each,
// sorted by name), or a file (gzip or zstd accepted) with one note per line, raw or JSONL
// {"text": ...}. Empty notes are skipped.
func LoadNotes(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	var notes []string
	if fi.IsDir() {
		names, err := filepath.Glob(filepath.Join(path, "*.txt"))
		if err != nil {
			return nil, err
		}
		sort.Strings(names)
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				return nil, err
			}
			if s := string(b); strings.TrimSpace(s) != "" && utf8.ValidString(s) {
				notes = append(notes, s)
			}
		}
	} else {
		f, err := corpus.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<16), 1<<28)
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(strings.TrimSpace(l), "{") {
				var v struct {
					Text *string `json:"text"`
				}
				if json.Unmarshal([]byte(l), &v) == nil && v.Text != nil {
					l = *v.Text
				}
			}
			if strings.TrimSpace(l) != "" && utf8.ValidString(l) {
				notes = append(notes, l)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	if len(notes) == 0 {
		return nil, fmt.Errorf("%s: no notes", path)
	}
	return notes, nil
}

// SynthNotes returns n synthetic clinical notes (synth.Generate) of at least words words
// each: several generated notes joined by a blank line.
func SynthNotes(seed uint64, n, words int) ([]string, error) {
	c, err := synth.Generate(seed, 4*n+4, 0)
	if err != nil {
		return nil, err
	}
	var notes []string
	var cur []string
	nw := 0
	for i := 0; len(notes) < n; i++ {
		t := c.Medication[i%len(c.Medication)].Text
		cur = append(cur, strings.TrimSpace(t))
		nw += len(strings.Fields(t))
		if nw >= words {
			notes = append(notes, strings.Join(cur, "\n\n")+"\n")
			cur, nw = nil, 0
		}
	}
	return notes, nil
}

// corpusVocab builds a WordPiece vocabulary that covers notes: the special tokens, every
// word (split on white space and punctuation, as BERT's basic tokenizer does) and every
// character (alone and as a ## piece), padded with [unusedN] to size entries.
func corpusVocab(notes []string, size int) (*bert.Vocab, error) {
	toks := []string{bert.PadToken, bert.UnkToken, bert.ClsToken, bert.SepToken, bert.MaskToken}
	seen := map[string]bool{}
	for _, t := range toks {
		seen[t] = true
	}
	add := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			toks = append(toks, t)
		}
	}
	for _, n := range notes {
		for _, w := range strings.FieldsFunc(n, unicode.IsSpace) {
			var cur strings.Builder
			for _, r := range w {
				add(string(r))
				add("##" + string(r))
				if unicode.IsPunct(r) || unicode.IsSymbol(r) {
					add(cur.String())
					cur.Reset()
					continue
				}
				cur.WriteRune(r)
			}
			add(cur.String())
		}
	}
	for i := 0; len(toks) < size; i++ {
		add(fmt.Sprintf("[unused%d]", i))
	}
	return bert.ReadVocab(strings.NewReader(strings.Join(toks, "\n") + "\n"))
}

// randomModel builds the random multitask model of o over notes' vocabulary.
func randomModel(o ServeOptions, notes []string) (*mtl.Model, *bert.Tokenizer, error) {
	if o.Hidden%64 != 0 || o.Labels < 3 || o.K < 1 || o.MaxLen < 3 {
		return nil, nil, fmt.Errorf("bench serve: need hidden a multiple of 64, labels >= 3, k >= 1, max-len >= 3 (have %+v)", o)
	}
	var v *bert.Vocab
	var err error
	if o.Vocab != "" {
		v, err = bert.LoadVocab(o.Vocab)
	} else {
		v, err = corpusVocab(notes, 28996)
	}
	if err != nil {
		return nil, nil, err
	}
	cfg := bert.DefaultConfig()
	cfg.VocabSize, cfg.NumHiddenLayers, cfg.HiddenSize = v.Len(), o.Layers, o.Hidden
	cfg.NumAttentionHeads, cfg.IntermediateSize = o.Hidden/64, 4*o.Hidden
	cfg.MaxPositionEmbeddings = max(512, o.MaxLen)
	enc, err := bert.New(cfg, o.Seed+1, false)
	if err != nil {
		return nil, nil, err
	}
	labels := []string{"O"}
	for t := 0; len(labels)+2 <= o.Labels; t++ {
		labels = append(labels, fmt.Sprintf("B-T%d", t), fmt.Sprintf("I-T%d", t))
	}
	specs := make([]mtl.TaskSpec, o.K)
	for i := range specs {
		specs[i] = mtl.TaskSpec{Name: fmt.Sprintf("task%d", i), Kind: mtl.NER, Labels: labels, Scheme: "BIO", MaxLength: o.MaxLen}
	}
	m, err := mtl.NewModel(enc, specs, o.Seed+2, 0)
	if err != nil {
		return nil, nil, err
	}
	return m, bert.NewTokenizer(v, bert.TokenizerOptions{}), nil
}

// localServer is an serve.Server listening on 127.0.0.1.
type localServer struct {
	s    *serve.Server
	hs   *http.Server
	base string
}

func startServer(ex *mtl.Extractor, cfg serve.Config) (*localServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := serve.New(cfg)
	s.SetExtractor(ex)
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	return &localServer{s: s, hs: hs, base: "http://" + ln.Addr().String()}, nil
}

func (l *localServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l.hs.Shutdown(ctx)
	l.s.Close()
}

// metrics scrapes the server's /metrics into name -> value (series without labels only).
func (l *localServer) metrics(c *http.Client) (map[string]float64, error) {
	resp, err := c.Get(l.base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") || strings.Contains(l, "{") {
			continue
		}
		name, v, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}

// answer is one response as the client saw it.
type answer struct {
	sent      string // the id sent
	code      int
	id        string // the X-Request-Id echoed
	retry     bool   // Retry-After present
	latency   time.Duration
	transport error
	bad       bool // a 200 whose entities do not match its own note
}

// request is one request to send.
type request struct {
	id   string
	note string
	body []byte
}

// send posts r to /v1/extract and checks a 200 answer against its note.
func send(c *http.Client, base string, r request) answer {
	t0 := time.Now()
	req, err := http.NewRequest("POST", base+"/v1/extract", bytes.NewReader(r.body))
	if err != nil {
		return answer{sent: r.id, transport: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", r.id)
	if len(r.body) > 64<<10 {
		// A large body waits for the server's go-ahead: a server that refuses it at once
		// (503) then never has to read, or cut, it.
		req.Header.Set("Expect", "100-continue")
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{sent: r.id, transport: err, latency: time.Since(t0)}
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	a := answer{sent: r.id, code: resp.StatusCode, id: resp.Header.Get("X-Request-Id"), retry: resp.Header.Get("Retry-After") != "", latency: time.Since(t0), transport: err}
	if a.code == 200 && err == nil {
		a.bad = !answerMatches(b, r.note)
	}
	return a
}

// answerMatches says whether an extract answer is one for note: every entity's text is the
// note at its byte offsets, and its character offsets count the runes before them.
func answerMatches(body []byte, note string) bool {
	var res mtl.Result
	if err := json.Unmarshal(body, &res); err != nil || res.Entities == nil {
		return false
	}
	for _, ents := range res.Entities {
		for _, e := range ents {
			if e.ByteStart < 0 || e.ByteEnd > len(note) || e.ByteStart >= e.ByteEnd || note[e.ByteStart:e.ByteEnd] != e.Text {
				return false
			}
			if utf8.RuneCountInString(note[:e.ByteStart]) != e.Start || e.End-e.Start != utf8.RuneCountInString(e.Text) {
				return false
			}
		}
	}
	return true
}

func extractBody(note string) []byte {
	b, _ := json.Marshal(map[string]string{"text": note})
	return b
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 1) of sorted ds in ms.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	k := int(math.Ceil(p*float64(len(ds)))) - 1
	k = min(max(k, 0), len(ds)-1)
	return float64(ds[k]) / 1e6
}

func newClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute, DisableCompression: true,
		ExpectContinueTimeout: 5 * time.Second,
	}}
}

// Serve runs the benchmark: for each batching mode and concurrency a closed-loop phase on a
// fresh server, then (Overload > 0) the open-loop overload phase.
func Serve(o ServeOptions) (*ServeResult, error) {
	o.defaults()
	for _, c := range o.Concurrency {
		if c < 1 {
			return nil, fmt.Errorf("bench serve: concurrency %d", c)
		}
	}
	notes := o.Notes
	if len(notes) == 0 {
		var err error
		if notes, err = SynthNotes(o.Seed, o.SynthNotes, o.SynthWords); err != nil {
			return nil, err
		}
	}
	res := &ServeResult{Threads: kernels.Threads(), GOMAXPROCS: runtime.GOMAXPROCS(0), MaxQueue: o.MaxQueue,
		MaxBatchTok: o.MaxBatchTokens, MaxWaitMs: float64(o.MaxWait) / 1e6, Notes: len(notes)}
	ex, tok, err := serveModel(o, notes, res)
	if err != nil {
		return nil, err
	}
	b := &serveBench{o: o, ex: ex, notes: notes, bodies: requestBodies(notes, tok, res), client: newClient(o.Timeout + 30*time.Second)}
	defer b.client.CloseIdleConnections()
	b.warmUp()
	if err := b.closedLoops(res); err != nil {
		return nil, err
	}
	res.Speedup = speedups(res.Phases)
	if o.Overload > 0 {
		if res.Overload, err = b.overloadPhase(res.Phases); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// serveModel loads the checkpoint of o.Model, or makes the random model o describes (its
// vocabulary from notes), and records what it is in res.
func serveModel(o ServeOptions, notes []string, res *ServeResult) (*mtl.Extractor, *bert.Tokenizer, error) {
	if o.Model != "" {
		m, tok, err := mtl.LoadCheckpoint(o.Model, bert.DefaultLowerCase)
		if err != nil {
			return nil, nil, err
		}
		if o.Int8 {
			m.Encoder.QuantizeInt8()
		}
		m.Encoder.PackForInferenceOnly() // as mtbert serve does
		res.Weights = weightsName(m.Encoder)
		ex := mtl.NewExtractor(m, tok)
		res.Model = o.Model
		for _, t := range ex.Tasks() {
			if t.Kind.PerToken() && t.Kind.Predicts() {
				res.NERHeads++
			}
		}
		res.Layers, res.Hidden = m.Encoder.Cfg.NumHiddenLayers, m.Encoder.Cfg.HiddenSize
		return ex, tok, nil
	}
	m, tok, err := randomModel(o, notes)
	if err != nil {
		return nil, nil, err
	}
	if o.Int8 {
		m.Encoder.QuantizeInt8()
	}
	m.Encoder.PackForInferenceOnly() // as mtbert serve does
	res.Weights = weightsName(m.Encoder)
	res.Model = fmt.Sprintf("random: %d layers, %d hidden, %d ner heads of %d labels, max_length %d", o.Layers, o.Hidden, o.K, o.Labels, o.MaxLen)
	res.NERHeads = o.K
	res.Layers, res.Hidden = m.Encoder.Cfg.NumHiddenLayers, m.Encoder.Cfg.HiddenSize
	return mtl.NewExtractor(m, tok), tok, nil
}

// weightsName is ServeResult.Weights for enc.
func weightsName(enc *bert.Model) string {
	if enc.IsInt8() {
		return "int8 (" + kernels.QGemmPath() + ")"
	}
	if enc.InferenceOnly() {
		return "fp32-packed"
	}
	return "fp32"
}

// requestBodies encodes each note as a /v1/extract request body and records the notes'
// mean length in characters and sub-words in res.
func requestBodies(notes []string, tok *bert.Tokenizer, res *ServeResult) [][]byte {
	bodies := make([][]byte, len(notes))
	chars, subs := 0, 0
	for i, n := range notes {
		bodies[i] = extractBody(n)
		chars += utf8.RuneCountInString(n)
		subs += len(tok.Tokenize(n))
	}
	res.MeanChars, res.MeanSubwords = float64(chars)/float64(len(notes)), float64(subs)/float64(len(notes))
	return bodies
}

// serveBench is one bench serve run: the model, the notes and their request bodies, the
// client, and the count of requests sent (their ids).
type serveBench struct {
	o      ServeOptions
	ex     *mtl.Extractor
	notes  []string
	bodies [][]byte
	client *http.Client
	seq    int
}

// config is the server's configuration for a phase: batching on or off, and a queue of
// queue requests.
func (b *serveBench) config(batching bool, queue int) serve.Config {
	c := serve.Config{MaxBatchTokens: b.o.MaxBatchTokens, MaxWait: b.o.MaxWait, MaxQueue: queue, MaxBody: b.o.MaxBody, Timeout: b.o.Timeout}
	if !batching {
		c.MaxBatchRequests = 1
	}
	return c
}

// warmUp sends one request through a server, so the first phase does not pay first-use
// costs.
func (b *serveBench) warmUp() {
	if ls, err := startServer(b.ex, b.config(true, b.o.MaxQueue)); err == nil {
		send(b.client, ls.base, request{id: "warmup", note: b.notes[0], body: b.bodies[0]})
		ls.close()
	}
}

// closedLoops runs the closed-loop phases into res.Phases. Each concurrency level runs with
// batching on and off back to back, so that the two figures compared share the machine's
// state as far as possible. These phases admit every client (a queue of at least the
// concurrency), so that they measure throughput and latency, not refusals; the overload
// phase has MaxQueue.
func (b *serveBench) closedLoops(res *ServeResult) error {
	for _, conc := range b.o.Concurrency {
		for _, batching := range b.o.Batching {
			ph, err := b.closedLoop(b.config(batching, max(b.o.MaxQueue, conc)), conc, b.o)
			if err != nil {
				return err
			}
			ph.Batching = batching
			res.Phases = append(res.Phases, ph)
			if b.o.Log != nil {
				fmt.Fprintf(b.o.Log, "batching %-3s concurrency %3d: %d/%d ok, %.2f notes/s, p50 %.0f ms, p99 %.0f ms, %.2f requests/batch\n",
					onOff(batching), conc, ph.OK, ph.Requests, ph.NotesPerS, ph.P50Ms, ph.P99Ms, ph.MeanBatchRequests)
			}
		}
	}
	return nil
}

// closedLoop starts a server with cfg and runs one closed-loop phase of conc clients on it.
func (b *serveBench) closedLoop(cfg serve.Config, conc int, o ServeOptions) (ServePhase, error) {
	ls, err := startServer(b.ex, cfg)
	if err != nil {
		return ServePhase{}, err
	}
	defer ls.close()
	return closedLoop(b.client, ls, conc, o, b.notes, b.bodies, &b.seq)
}

// speedups pairs each batching-on phase with the batching-off phase of its concurrency.
func speedups(phases []ServePhase) []ServeSpeedup {
	var out []ServeSpeedup
	for _, on := range phases {
		if !on.Batching {
			continue
		}
		for _, off := range phases {
			if !off.Batching && off.Concurrency == on.Concurrency && off.NotesPerS > 0 {
				out = append(out, ServeSpeedup{Concurrency: on.Concurrency, On: on.NotesPerS, Off: off.NotesPerS, Ratio: on.NotesPerS / off.NotesPerS})
			}
		}
	}
	return out
}

// overloadPhase sends o.Overload times the capacity (the best closed-loop throughput, or a
// calibration's) to a server with batching on and MaxQueue.
func (b *serveBench) overloadPhase(phases []ServePhase) (*ServeOverload, error) {
	capacity, err := b.capacity(phases)
	if err != nil {
		return nil, err
	}
	ov, err := overload(b.ex, b.config(true, b.o.MaxQueue), b.o, capacity, b.notes, b.bodies)
	if err != nil {
		return nil, err
	}
	if b.o.Log != nil {
		fmt.Fprintf(b.o.Log, "overload x%.1f: %d sent, %d answered (200 %d, 503 %d, 413 %d, other %d), peak heap %.0f MB (idle %.0f)\n",
			b.o.Overload, ov.Sent, ov.Answered, ov.Status200, ov.Status503, ov.Status413, ov.StatusOther, ov.PeakHeapMB, ov.IdleHeapMB)
	}
	return ov, nil
}

// capacity is the best notes/s of the closed-loop phases; when none measured it, a short
// calibration with batching at concurrency 16 does.
func (b *serveBench) capacity(phases []ServePhase) (float64, error) {
	capacity := 0.0
	for _, p := range phases {
		capacity = max(capacity, p.NotesPerS)
	}
	if capacity == 0 {
		oc := b.o
		oc.Requests, oc.Duration = 0, min(b.o.Duration, 5*time.Second)
		if oc.Duration <= 0 {
			oc.Duration = 5 * time.Second
		}
		ph, err := b.closedLoop(b.config(true, b.o.MaxQueue), 16, oc)
		if err != nil {
			return 0, err
		}
		capacity = ph.NotesPerS
	}
	if capacity <= 0 {
		return 0, errors.New("bench serve: no request succeeded, so the capacity is unknown")
	}
	return capacity, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// closedLoop runs conc clients against ls until o.Requests requests were sent (when set) or
// o.Duration has passed (then the requests in flight finish).
func closedLoop(c *http.Client, ls *localServer, conc int, o ServeOptions, notes []string, bodies [][]byte, seq *int) (ServePhase, error) {
	ph := ServePhase{Concurrency: conc}
	var next atomic.Int64
	start := *seq
	var mu sync.Mutex
	var lats []time.Duration
	var wg sync.WaitGroup
	t0 := time.Now()
	deadline := t0.Add(o.Duration)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if o.Requests > 0 && k >= o.Requests || o.Requests <= 0 && time.Now().After(deadline) {
					return
				}
				i := (start + k) % len(notes)
				a := send(c, ls.base, request{id: fmt.Sprintf("p%d", start+k), note: notes[i], body: bodies[i]})
				mu.Lock()
				ph.Requests++
				if a.code == 200 && a.transport == nil && a.id == fmt.Sprintf("p%d", start+k) {
					ph.OK++
					lats = append(lats, a.latency)
					if a.bad {
						ph.BadAnswers++
					}
				} else {
					ph.Failed++
					if ph.FailedBy == nil {
						ph.FailedBy = map[string]int{}
					}
					if a.transport != nil {
						ph.FailedBy["transport"]++
					} else {
						ph.FailedBy[strconv.Itoa(a.code)]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	ph.Seconds = time.Since(t0).Seconds()
	*seq = start + ph.Requests
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	ph.NotesPerS = float64(ph.OK) / ph.Seconds
	ph.P50Ms, ph.P99Ms = percentile(lats, 0.5), percentile(lats, 0.99)
	if len(lats) > 0 {
		ph.MaxMs = float64(lats[len(lats)-1]) / 1e6
	}
	m, err := ls.metrics(c)
	if err != nil {
		return ph, err
	}
	if n := m["mtbert_batch_requests_count"]; n > 0 {
		ph.MeanBatchRequests = m["mtbert_batch_requests_sum"] / n
	}
	if p := m["mtbert_encoder_passes_total"]; p > 0 {
		ph.MeanWindowsPerPass = m["mtbert_windows_total"] / p
		ph.Passes = int64(p)
	}
	return ph, nil
}

// memSample is one reading of the process's memory.
type memSample struct{ heap, rss float64 }

func readMem() memSample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: float64(ms.HeapInuse) / (1 << 20), rss: procStatusMB("VmRSS:")}
}

// procStatusMB reads a kB field of /proc/self/status in MiB (0 where /proc is absent).
func procStatusMB(field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// overload offers requests at factor × capacity per second, open loop, for o.OverloadDuration,
// every request with a unique id, and accounts for every answer.
func overload(ex *mtl.Extractor, cfg serve.Config, o ServeOptions, capacity float64, notes []string, bodies [][]byte) (*ServeOverload, error) {
	ov := &ServeOverload{Factor: o.Overload, CapacityPerS: capacity, OtherCodes: map[string]int{}}
	ls, err := startServer(ex, cfg)
	if err != nil {
		return nil, err
	}
	defer ls.close()
	c := newClient(o.Timeout + 30*time.Second)
	defer c.CloseIdleConnections()
	oversize := []byte(`{"text": "` + strings.Repeat("x", int(o.MaxBody)) + `"}`)

	runtime.GC()
	idle := readMem()
	ov.IdleHeapMB, ov.IdleRSSMB = idle.heap, idle.rss
	// Reset the peak resident set (VmHWM) to the current one (Linux >= 4.0).
	ov.HWMReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	peak := idle
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(25 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tk.C:
				m := readMem()
				peak.heap, peak.rss = max(peak.heap, m.heap), max(peak.rss, m.rss)
			}
		}
	}()

	rate := o.Overload * capacity
	interval := time.Duration(float64(time.Second) / rate)
	answers := make(chan answer, 1024)
	var sent []string
	var wg sync.WaitGroup
	t0 := time.Now()
	end := t0.Add(o.OverloadDuration)
	for k := 0; ; k++ {
		at := t0.Add(time.Duration(k) * interval)
		if o.OverloadRequests > 0 && k >= o.OverloadRequests || o.OverloadRequests <= 0 && !at.Before(end) {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		r := request{id: fmt.Sprintf("o%d", k)}
		if o.OversizeEvery > 0 && k%o.OversizeEvery == o.OversizeEvery-1 {
			r.body = oversize
			ov.OversizeSent++
		} else {
			i := k % len(notes)
			r.note, r.body = notes[i], bodies[i]
		}
		sent = append(sent, r.id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- send(c, ls.base, r)
		}()
	}
	ov.Seconds = max(time.Since(t0).Seconds(), 1e-9)
	ov.Sent = len(sent)
	ov.OfferedPerS = float64(ov.Sent) / ov.Seconds
	go func() { wg.Wait(); close(answers) }()
	seen := map[string]int{}
	failed := map[string]bool{}
	var lats []time.Duration
	for a := range answers {
		if a.transport != nil {
			ov.TransportErrs++
			failed[a.sent] = true
			continue
		}
		ov.Answered++
		seen[a.sent]++
		if a.id != a.sent {
			ov.WrongID++ // the answer does not echo its request's id
		}
		switch a.code {
		case 200:
			ov.Status200++
			lats = append(lats, a.latency)
			if a.bad {
				ov.BadAnswers++
			}
		case 503:
			ov.Status503++
			if !a.retry {
				ov.No503Retry++
			}
		case 413:
			ov.Status413++
		default:
			ov.StatusOther++
			ov.OtherCodes[strconv.Itoa(a.code)]++
		}
	}
	ov.DrainSeconds = time.Since(t0).Seconds() - ov.Seconds
	close(stopSampling)
	<-sampled
	last := readMem()
	peak.heap, peak.rss = max(peak.heap, last.heap), max(peak.rss, last.rss)
	ov.PeakHeapMB, ov.PeakRSSMB, ov.VmHWMMB = peak.heap, peak.rss, procStatusMB("VmHWM:")
	if ov.IdleHeapMB > 0 {
		ov.HeapRatio = ov.PeakHeapMB / ov.IdleHeapMB
	}
	if ov.IdleRSSMB > 0 {
		ov.RSSRatio = ov.PeakRSSMB / ov.IdleRSSMB
	}
	for _, id := range sent {
		switch n := seen[id]; {
		case n == 0 && !failed[id]:
			ov.Lost++
		case n > 1:
			ov.Duplicated += n - 1
		}
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	ov.P50Ms, ov.P99Ms = percentile(lats, 0.5), percentile(lats, 0.99)
	if len(ov.OtherCodes) == 0 {
		ov.OtherCodes = nil
	}
	return ov, nil
}

// WriteServeTable writes r as text tables.
func WriteServeTable(w io.Writer, r *ServeResult) {
	fmt.Fprintf(w, "model: %s, weights %s\n", r.Model, r.Weights)
	fmt.Fprintf(w, "notes: %d, mean %.0f characters, %.0f sub-words; max queue %d, max batch tokens %d, max wait %.1f ms; %d threads\n\n",
		r.Notes, r.MeanChars, r.MeanSubwords, r.MaxQueue, r.MaxBatchTok, r.MaxWaitMs, r.Threads)
	fmt.Fprintf(w, "%-8s %5s %8s %6s %9s %9s %9s %9s %10s %12s  %s\n", "batching", "conc", "requests", "ok", "notes/s", "p50 ms", "p99 ms", "max ms", "req/batch", "windows/pass", "failed")
	for _, p := range r.Phases {
		failed := "-"
		if len(p.FailedBy) > 0 {
			var parts []string
			for c, n := range p.FailedBy {
				parts = append(parts, fmt.Sprintf("%s:%d", c, n))
			}
			sort.Strings(parts)
			failed = strings.Join(parts, " ")
		}
		fmt.Fprintf(w, "%-8s %5d %8d %6d %9.2f %9.0f %9.0f %9.0f %10.2f %12.2f  %s\n", onOff(p.Batching), p.Concurrency, p.Requests, p.OK, p.NotesPerS, p.P50Ms, p.P99Ms, p.MaxMs, p.MeanBatchRequests, p.MeanWindowsPerPass, failed)
	}
	if len(r.Speedup) > 0 {
		fmt.Fprintf(w, "\n%5s %12s %12s %8s\n", "conc", "on notes/s", "off notes/s", "speedup")
		for _, s := range r.Speedup {
			fmt.Fprintf(w, "%5d %12.2f %12.2f %8.2f\n", s.Concurrency, s.On, s.Off, s.Ratio)
		}
	}
	if ov := r.Overload; ov != nil {
		fmt.Fprintf(w, "\noverload: %.1fx capacity (%.2f notes/s): %d requests offered in %.1f s (%.1f/s), answered %d in %.1f s more\n",
			ov.Factor, ov.CapacityPerS, ov.Sent, ov.Seconds, ov.OfferedPerS, ov.Answered, ov.DrainSeconds)
		fmt.Fprintf(w, "  200: %d  503: %d  413: %d  other: %d  transport errors: %d  lost: %d  duplicated: %d  wrong id: %d  503 without Retry-After: %d  bad answers: %d\n",
			ov.Status200, ov.Status503, ov.Status413, ov.StatusOther, ov.TransportErrs, ov.Lost, ov.Duplicated, ov.WrongID, ov.No503Retry, ov.BadAnswers)
		fmt.Fprintf(w, "  200 latency p50 %.0f ms, p99 %.0f ms\n", ov.P50Ms, ov.P99Ms)
		fmt.Fprintf(w, "  heap in use: idle %.1f MB, peak %.1f MB (x%.2f); resident: idle %.1f MB, peak %.1f MB (x%.2f), VmHWM %.1f MB\n",
			ov.IdleHeapMB, ov.PeakHeapMB, ov.HeapRatio, ov.IdleRSSMB, ov.PeakRSSMB, ov.RSSRatio, ov.VmHWMMB)
	}
}
