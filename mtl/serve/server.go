package serve

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/corpus"
)

// Config holds the Server's limits. Zero values take the defaults.
type Config struct {
	// MaxBatchTokens bounds the padded sub-words of the windows collected for one batch
	// (default 2048), and so the working memory of a pass: about 0.1 MB per sub-word for
	// BERT-base (one layer's intermediates at a time plus every layer's hidden state).
	MaxBatchTokens int
	// MaxWait is how long the batcher waits for more jobs after the first (default 5ms).
	MaxWait time.Duration
	// MaxBatchRequests, when positive, bounds the requests (jobs) collected into one batch;
	// 1 turns dynamic batching off: each request runs alone (its own notes' windows still
	// share passes), with no wait. 0: no bound but MaxBatchTokens.
	MaxBatchRequests int
	// MaxQueue is the number of extract and pair requests admitted at once, from the end of
	// their body to their answer (default 256); more are answered 503 with Retry-After. A
	// request is admitted only once its body is read, so slow senders hold no slot. The
	// bodies held at once, being read or admitted, total at most MaxQueue × MaxBody bytes
	// (503 beyond). An admitted request holds its body up to about 6 times over while it is
	// decoded (the read buffer, the JSON decoder's growing buffer, the unquoted strings) and
	// its notes about 100 bytes per sub-word up to MaxTokens (the tokenizer stops there), so
	// live memory under any load stays below about MaxQueue × (6 × MaxBody + 100 × MaxTokens)
	// bytes.
	MaxQueue int
	// MaxBody is the largest request body in bytes (default 16 MiB).
	MaxBody int64
	// BodyTimeout bounds the reading of a request's body (default 10s, at most Timeout; 408
	// beyond).
	BodyTimeout time.Duration
	// MaxTokens is the most padded sub-words one request may need (default 1<<20); the
	// tokenizer stops after that many sub-words, so a longer note costs no more.
	MaxTokens int
	// Timeout is each request's deadline (default 60s).
	Timeout time.Duration
	// Token, when not empty, is the bearer token every /v1/ and /metrics request must carry
	// ("Authorization: Bearer TOKEN", the scheme in any case as RFC 7235 says).
	Token string
	// Log receives one access line per request (nil: none).
	Log *log.Logger
}

func (c *Config) defaults() {
	if c.MaxBatchTokens <= 0 {
		c.MaxBatchTokens = 2048
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 5 * time.Millisecond
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 256
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 16 << 20
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = 10 * time.Second
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = 1 << 20
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
}

// Server is the HTTP front of an Extractor (mtbert serve). Its heart is dynamic batching:
//
//   - A request handler checks the headers (Content-Type application/json, else 415; an
//     Origin, when present, naming this server's own host, else 403), reads the body under
//     its own deadline (BodyTimeout) and a shared budget of MaxQueue × MaxBody bytes, then
//     takes one of MaxQueue admission slots (503 with Retry-After when none is free). It
//     checks the body (size limit, valid UTF-8, strict JSON), tokenises its notes and cuts
//     them into windows (Extractor.PlanNoteMax, the same code Extract runs), stopping at
//     Config.MaxTokens sub-words (413), and puts a job on the batcher's queue.
//   - One batcher goroutine takes a job, then keeps collecting jobs until their padded windows
//     reach MaxBatchTokens or MaxWait has passed since the first, and runs all the windows of
//     all the notes of all the jobs through the encoder together, with the union of the heads
//     the jobs selected: one forward pass per padded window length (PadLength), split further
//     only when a length's windows exceed MaxBatchTokens. A job whose deadline passed or
//     whose client left is dropped before the batch starts, and its sequences are left out
//     of every later pass of the batch (Sequence.Ctx).
//   - Each handler decodes its own plans' outputs (NotePlan.Decode, as Extract does). Since a
//     sequence's padded length depends on the sequence alone, the answers are bit-identical
//     to Extractor.Extract on the same notes, whatever the batch.
//
// Pair requests are planned (PlanPair) and batched the same way, in the same passes as
// notes, and decoded as Extractor.Pair does. Request bodies are never logged (notes are PHI): the access log
// has the method, path, status, body size and duration only.
//
// Create it with New, give it its model with SetExtractor (readyz answers 503 until
// then), and Close it after the http.Server that uses Handler has shut down.
type Server struct {
	cfg Config
	ex  atomic.Pointer[mtl.Extractor]
	// reading is the bytes of request bodies held now (being read or admitted).
	reading atomic.Int64
	queue   chan *job
	admit   chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	start   sync.Once
	met     serverMetrics
	// passHook, when set (tests), is called after every encoder pass the batcher runs.
	passHook func(seqs, T int)
}

// job is one queued request: the sequences of its notes' or its pair's plans.
type job struct {
	ctx  context.Context
	seqs []mtl.Sequence
	// out receives the sequences' outputs.
	out chan jobResult
}

type jobResult struct {
	out []mtl.Outputs
	err error
}

// New returns a server with cfg's limits and no model yet.
func New(cfg Config) *Server {
	cfg.defaults()
	s := &Server{cfg: cfg, queue: make(chan *job, cfg.MaxQueue), admit: make(chan struct{}, cfg.MaxQueue), stop: make(chan struct{}), done: make(chan struct{})}
	s.met.init()
	return s
}

// SetExtractor gives the server its model and starts the batcher; the server is then ready.
func (s *Server) SetExtractor(ex *mtl.Extractor) {
	s.ex.Store(ex)
	s.start.Do(func() { go s.batcher() })
}

// Close stops the batcher; queued jobs are answered with an error. Call it after the HTTP
// server has drained.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.stop)
		s.start.Do(func() { close(s.done) })
		<-s.done
	})
}

// Passes returns the number of encoder passes run so far.
func (s *Server) Passes() int64 { return s.met.passes.Load() }

// ExtractRequest is the body of POST /v1/extract: one note (text) or several (texts), and
// the ner tasks to run (all when empty).
type ExtractRequest struct {
	Text  *string  `json:"text,omitempty"`
	Texts []string `json:"texts,omitempty"`
	Tasks []string `json:"tasks,omitempty"`
}

// ExtractResults answers a request with texts: one Result per note, in order. A request with
// text is answered with its Result.
type ExtractResults struct {
	Results []mtl.Result `json:"results"`
}

// PairRequest is the body of POST /v1/pairs; Tasks are sentence-level tasks (all when empty).
type PairRequest struct {
	TextA string   `json:"text_a"`
	TextB string   `json:"text_b"`
	Tasks []string `json:"tasks,omitempty"`
}

// PairResponse answers it.
type PairResponse struct {
	Pairs map[string]mtl.PairResult `json:"pairs"`
}

// ModelInfo is the answer of GET /v1/model.
type ModelInfo struct {
	Tasks   []mtl.TaskSpec `json:"tasks"`
	Encoder any            `json:"encoder"`
}

// httpError is an error with its HTTP status.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, a ...any) error {
	return &httpError{code, fmt.Sprintf(format, a...)}
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { serveJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.ex.Load() == nil {
			serveJSON(w, 503, map[string]string{"status": "loading"})
			return
		}
		serveJSON(w, 200, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("/metrics", s.auth(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.met.write(w, len(s.queue), len(s.admit))
	}))
	mux.HandleFunc("/v1/model", s.auth(s.model(func(w http.ResponseWriter, r *http.Request, ex *mtl.Extractor) {
		serveJSON(w, 200, ModelInfo{Tasks: ex.Tasks(), Encoder: ex.Model().Encoder.Cfg})
	})))
	mux.HandleFunc("/v1/extract", s.auth(s.model(s.post(s.extract))))
	mux.HandleFunc("/v1/pairs", s.auth(s.model(s.post(s.pairs))))
	s.mountWeb(mux) // the page (web.go): GET / and /static/
	return s.logged(mux)
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	code int
	n    int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (the body read deadline).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += n
	return n, err
}

// knownPaths are the paths metrics are labelled with; others count as "other".
var knownPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/v1/model": true, "/v1/extract": true, "/v1/pairs": true}

// logged counts and times requests and writes the access log (never a body).
func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		rid := r.Header.Get("X-Request-Id")
		if validRequestID(rid) {
			w.Header().Set("X-Request-Id", rid)
		} else {
			rid = ""
		}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = 200
		}
		d := time.Since(t0)
		path := r.URL.Path
		if !knownPaths[path] {
			path = "other"
		}
		s.met.request(path, sw.code, d)
		if s.cfg.Log != nil {
			if rid != "" {
				s.cfg.Log.Printf("%s %s %d in=%dB out=%dB %v id=%s", r.Method, path, sw.code, r.ContentLength, sw.n, d.Round(time.Microsecond), rid)
			} else {
				s.cfg.Log.Printf("%s %s %d in=%dB out=%dB %v", r.Method, path, sw.code, r.ContentLength, sw.n, d.Round(time.Microsecond))
			}
		}
	})
}

// validRequestID says whether a client's X-Request-Id is echoed (and logged): 1 to 128
// characters of [A-Za-z0-9._:-], so that it can carry no note text and no log injection.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Token == "" {
		return h
	}
	want := []byte(s.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimLeft(tok, " ")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mtbert"`)
			serveError(w, errorf(401, "missing or wrong bearer token"))
			return
		}
		h(w, r)
	}
}

func (s *Server) model(h func(http.ResponseWriter, *http.Request, *mtl.Extractor)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ex := s.ex.Load()
		if ex == nil {
			w.Header().Set("Retry-After", "1")
			serveError(w, errorf(503, "the model is loading"))
			return
		}
		h(w, r, ex)
	}
}

// post checks the method, reads the body (limit, UTF-8), runs h under the request deadline
// and writes its answer or error.
func (s *Server) post(h func(ctx context.Context, ex *mtl.Extractor, body []byte) (any, error)) func(http.ResponseWriter, *http.Request, *mtl.Extractor) {
	return func(w http.ResponseWriter, r *http.Request, ex *mtl.Extractor) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			serveError(w, errorf(405, "use POST"))
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			serveError(w, errorf(415, "the body must be sent as Content-Type: application/json"))
			return
		}
		if err := sameOrigin(r); err != nil {
			serveError(w, err)
			return
		}
		body, err := s.readBody(w, r)
		if err != nil {
			if he := (*httpError)(nil); errors.As(err, &he) && he.code == 503 {
				w.Header().Set("Retry-After", "1")
			}
			serveError(w, err)
			return
		}
		defer s.reading.Add(-int64(len(body)))
		select {
		case s.admit <- struct{}{}:
			defer func() { <-s.admit }()
		default:
			s.met.rejected.Add(1)
			w.Header().Set("Retry-After", "1")
			serveError(w, errorf(503, "server busy: %d requests in progress", cap(s.admit)))
			return
		}
		if !utf8.Valid(body) {
			serveError(w, errorf(400, "request body is not valid UTF-8 (first bad byte at offset %d)", corpus.FirstInvalid(string(body))))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
		defer cancel()
		v, err := h(ctx, ex, body)
		if err != nil {
			if he := (*httpError)(nil); errors.As(err, &he) && he.code == 503 {
				w.Header().Set("Retry-After", "1")
			}
			serveError(w, err)
			return
		}
		serveJSON(w, 200, v)
	}
}

// sameOrigin refuses (403) a request whose Origin header, when present, is not this server's
// own scheme and host: a web page elsewhere that the operator visits cannot make the server
// compute (a cross-origin "simple" POST would otherwise reach it). Browsers send Origin on
// every POST, the embedded page's included; command-line clients send none.
func sameOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) || u.Scheme != "http" && u.Scheme != "https" {
		return errorf(403, "cross-origin request from %.100q refused", o)
	}
	return nil
}

// readBody reads r's body under the body deadline, the size limit and the server's budget of
// body bytes held at once (MaxQueue × MaxBody), which it debits by the body's length (the
// caller credits it back when done with the body).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rc := http.NewResponseController(w)
	limit := min(s.cfg.BodyTimeout, s.cfg.Timeout)
	deadline := rc.SetReadDeadline(time.Now().Add(limit)) == nil
	br := &budgetReader{r: http.MaxBytesReader(w, r.Body, s.cfg.MaxBody), held: &s.reading, budget: int64(s.cfg.MaxQueue) * s.cfg.MaxBody}
	body, err := io.ReadAll(br)
	if err == nil && deadline {
		// A deadline left on the connection would cancel the request's context once it
		// passes (net/http's background read), so it is lifted once the body is in. On an
		// error it stays: net/http then gives up on the rest of the body at once instead of
		// waiting for it before the answer, and closes the connection.
		rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		w.Header().Set("Connection", "close")
		s.reading.Add(-br.n)
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return nil, errorf(413, "request body over %d bytes", s.cfg.MaxBody)
		case errors.Is(err, errBodyBudget):
			s.met.rejected.Add(1)
			return nil, errorf(503, "server busy: %d bytes of request bodies held", br.budget)
		case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
			return nil, errorf(408, "the request body took over %v to arrive", limit)
		}
		return nil, errorf(400, "reading the request body: %v", err)
	}
	return body, nil
}

var errBodyBudget = errors.New("over the budget of request body bytes")

// budgetReader reads r, adding what it reads to held and failing once held passes budget.
type budgetReader struct {
	r      io.Reader
	held   *atomic.Int64
	budget int64
	n      int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.held.Add(int64(n)) > b.budget {
		return n, errBodyBudget
	}
	return n, err
}

// decodeStrict decodes exactly one JSON object with no unknown fields.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(400, "bad JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(400, "bad JSON: the body must hold one JSON object and nothing after it")
	}
	return nil
}

func (s *Server) extract(ctx context.Context, ex *mtl.Extractor, body []byte) (any, error) {
	var req ExtractRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	var texts []string
	switch {
	case req.Text != nil && req.Texts != nil:
		return nil, errorf(400, `give "text" or "texts", not both`)
	case req.Text != nil:
		texts = []string{*req.Text}
	case req.Texts != nil:
		texts = req.Texts
	default:
		return nil, errorf(400, `want "text" or "texts"`)
	}
	plans := make([]*mtl.NotePlan, len(texts))
	var seqs []mtl.Sequence
	tokens := 0
	for i, t := range texts {
		// The tokenizer stops after what is left of MaxTokens: a huge note costs no more.
		p, err := ex.PlanNoteMax(t, req.Tasks, s.cfg.MaxTokens-tokens)
		if errors.Is(err, mtl.ErrTooManyTokens) {
			return nil, errorf(413, "the request needs more than %d sub-words (padded windows)", s.cfg.MaxTokens)
		}
		if err != nil {
			if len(texts) > 1 {
				return nil, errorf(400, "texts[%d]: %v", i, err)
			}
			return nil, errorf(400, "%v", err)
		}
		plans[i] = p
		tokens += p.Tokens()
		seqs = append(seqs, p.Sequences()...)
	}
	res, err := s.submit(ctx, newJob(ctx, seqs))
	if err != nil {
		return nil, err
	}
	results := make([]mtl.Result, len(plans))
	k := 0
	for i, p := range plans {
		n := p.Len()
		if results[i], err = p.Decode(res.out[k : k+n]); err != nil {
			return nil, err
		}
		k += n
	}
	if req.Text != nil {
		return results[0], nil
	}
	return ExtractResults{Results: results}, nil
}

func (s *Server) pairs(ctx context.Context, ex *mtl.Extractor, body []byte) (any, error) {
	var req PairRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	// Planned here, not on the batcher; the tokenizer stops at what truncation keeps.
	p, err := ex.PlanPair(req.TextA, req.TextB, req.Tasks)
	if err != nil {
		return nil, errorf(400, "%v", err)
	}
	res, err := s.submit(ctx, newJob(ctx, p.Sequences()))
	if err != nil {
		return nil, err
	}
	pairs, err := p.Decode(res.out)
	if err != nil {
		return nil, err
	}
	return PairResponse{Pairs: pairs}, nil
}

// submit queues j (503 when the queue is full) and waits for its result or the deadline.
func (s *Server) submit(ctx context.Context, j *job) (jobResult, error) {
	j.out = make(chan jobResult, 1)
	select {
	case <-s.stop:
		return jobResult{}, errorf(503, "server shutting down")
	default:
	}
	select {
	case s.queue <- j:
	default:
		s.met.rejected.Add(1)
		return jobResult{}, errorf(503, "server busy: %d requests queued", cap(s.queue))
	}
	select {
	case r := <-j.out:
		if r.err != nil {
			var he *httpError
			if errors.As(r.err, &he) {
				return r, r.err
			}
			if ctx.Err() != nil {
				return r, errorf(504, "request deadline exceeded")
			}
			return r, errorf(500, "%v", r.err)
		}
		return r, nil
	case <-ctx.Done():
		return jobResult{}, errorf(504, "request deadline exceeded")
	case <-s.done:
		select {
		case r := <-j.out:
			return r, r.err
		default:
			return jobResult{}, errorf(503, "server shutting down")
		}
	}
}

// newJob returns the job of seqs, each sequence tied to ctx so that the batcher leaves it out
// of the passes that start once the request is abandoned.
func newJob(ctx context.Context, seqs []mtl.Sequence) *job {
	own := make([]mtl.Sequence, len(seqs))
	for i, q := range seqs {
		q.Ctx = ctx
		own[i] = q
	}
	return &job{ctx: ctx, seqs: own}
}

// tokens returns the padded sub-words of j.
func (j *job) tokens() int {
	n := 0
	for _, q := range j.seqs {
		n += q.Pad
	}
	return n
}

// batcher collects jobs into batches and runs them until Close.
func (s *Server) batcher() {
	defer close(s.done)
	var carry *job
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-s.queue:
			case <-s.stop:
				s.drain()
				return
			}
		}
		batch := []*job{first}
		tokens := first.tokens()
		timer := time.NewTimer(s.cfg.MaxWait)
	collect:
		for tokens < s.cfg.MaxBatchTokens && (s.cfg.MaxBatchRequests <= 0 || len(batch) < s.cfg.MaxBatchRequests) {
			select {
			case j := <-s.queue:
				t := j.tokens()
				if t > 0 && tokens+t > s.cfg.MaxBatchTokens {
					carry = j
					break collect
				}
				tokens += t
				batch = append(batch, j)
			case <-timer.C:
				break collect
			case <-s.stop:
				break collect
			}
		}
		timer.Stop()
		s.run(batch)
	}
}

// drain answers the jobs left in the queue.
func (s *Server) drain() {
	for {
		select {
		case j := <-s.queue:
			j.out <- jobResult{err: errorf(503, "server shutting down")}
		default:
			return
		}
	}
}

// run runs one batch: the sequences of every live job together (notes and pairs alike),
// passes bounded by MaxBatchTokens.
func (s *Server) run(batch []*job) {
	ex := s.ex.Load()
	var live []*job
	var seqs []mtl.Sequence
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.out <- jobResult{err: err}
			continue
		}
		live = append(live, j)
		seqs = append(seqs, j.seqs...)
	}
	var out []mtl.Outputs
	var err error
	if len(seqs) > 0 {
		t0 := time.Now()
		out, err = ex.Run(context.Background(), seqs, mtl.PassLimits{MaxTokens: s.cfg.MaxBatchTokens}, func(n, T int) {
			s.met.pass(n, n*T)
			if s.passHook != nil {
				s.passHook(n, T)
			}
		})
		if err == nil {
			tok := 0
			for _, j := range live {
				tok += j.tokens()
			}
			s.met.batch(len(live), tok, time.Since(t0))
		}
	}
	k := 0
	for _, j := range live {
		r := jobResult{err: err}
		if err == nil {
			r.out = out[k : k+len(j.seqs)]
			if e := j.ctx.Err(); e != nil {
				r = jobResult{err: e} // abandoned during the batch: some outputs are missing
			}
		}
		k += len(j.seqs)
		j.out <- r
	}
}

func serveJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = 500, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func serveError(w http.ResponseWriter, err error) {
	code := 500
	var he *httpError
	if errors.As(err, &he) {
		code = he.code
	}
	serveJSON(w, code, map[string]string{"error": err.Error()})
}

// serverMetrics are the Prometheus metrics, written in the text exposition format by hand.
type serverMetrics struct {
	mu        sync.Mutex
	requests  map[[2]string]int64 // path, code
	latency   map[string]*histogram
	batchReqs histogram
	passes    atomic.Int64
	windows   atomic.Int64
	padded    atomic.Int64
	rejected  atomic.Int64
	tokens    int64
	busy      time.Duration
}

type histogram struct {
	bounds []float64
	counts []int64 // per bound, not cumulative; one more for +Inf
	sum    float64
	n      int64
}

var latencyBounds = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newHistogram(b []float64) *histogram {
	return &histogram{bounds: b, counts: make([]int64, len(b)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v)
	h.counts[i]++
	h.sum += v
	h.n++
}

func (h *histogram) write(w io.Writer, name, labels string) {
	sep := ""
	if labels != "" {
		sep = ","
	}
	c := int64(0)
	for i, b := range h.bounds {
		c += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{%s%sle=\"%s\"} %d\n", name, labels, sep, strconv.FormatFloat(b, 'g', -1, 64), c)
	}
	fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, h.n)
	if labels != "" {
		labels = "{" + labels + "}"
	}
	fmt.Fprintf(w, "%s_sum%s %s\n", name, labels, strconv.FormatFloat(h.sum, 'g', -1, 64))
	fmt.Fprintf(w, "%s_count%s %d\n", name, labels, h.n)
}

func (m *serverMetrics) init() {
	m.requests = map[[2]string]int64{}
	m.latency = map[string]*histogram{}
	m.batchReqs = *newHistogram([]float64{1, 2, 4, 8, 16, 32, 64, 128, 256})
}

func (m *serverMetrics) request(path string, code int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[2]string{path, strconv.Itoa(code)}]++
	h := m.latency[path]
	if h == nil {
		h = newHistogram(latencyBounds)
		m.latency[path] = h
	}
	h.observe(d.Seconds())
}

func (m *serverMetrics) pass(windows, padded int) {
	m.passes.Add(1)
	m.windows.Add(int64(windows))
	m.padded.Add(int64(padded))
}

func (m *serverMetrics) batch(jobs, tokens int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batchReqs.observe(float64(jobs))
	m.tokens += int64(tokens)
	m.busy += d
}

func (m *serverMetrics) write(w io.Writer, queued, inFlight int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintln(w, "# HELP mtbert_http_requests_total HTTP requests answered, by path and status code.")
	fmt.Fprintln(w, "# TYPE mtbert_http_requests_total counter")
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+" "+keys[i][1] < keys[j][0]+" "+keys[j][1] })
	for _, k := range keys {
		fmt.Fprintf(w, "mtbert_http_requests_total{path=%q,code=%q} %d\n", k[0], k[1], m.requests[k])
	}
	fmt.Fprintln(w, "# HELP mtbert_http_request_duration_seconds HTTP request latency, by path.")
	fmt.Fprintln(w, "# TYPE mtbert_http_request_duration_seconds histogram")
	paths := make([]string, 0, len(m.latency))
	for p := range m.latency {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		m.latency[p].write(w, "mtbert_http_request_duration_seconds", fmt.Sprintf("path=%q", p))
	}
	fmt.Fprintln(w, "# HELP mtbert_queue_depth Requests waiting for the batcher.")
	fmt.Fprintln(w, "# TYPE mtbert_queue_depth gauge")
	fmt.Fprintf(w, "mtbert_queue_depth %d\n", queued)
	fmt.Fprintln(w, "# HELP mtbert_requests_in_flight Extract and pair requests admitted and not yet answered.")
	fmt.Fprintln(w, "# TYPE mtbert_requests_in_flight gauge")
	fmt.Fprintf(w, "mtbert_requests_in_flight %d\n", inFlight)
	fmt.Fprintln(w, "# HELP mtbert_queue_rejected_total Requests refused with 503 because the server was full.")
	fmt.Fprintln(w, "# TYPE mtbert_queue_rejected_total counter")
	fmt.Fprintf(w, "mtbert_queue_rejected_total %d\n", m.rejected.Load())
	fmt.Fprintln(w, "# HELP mtbert_batch_requests Extract requests per batch.")
	fmt.Fprintln(w, "# TYPE mtbert_batch_requests histogram")
	m.batchReqs.write(w, "mtbert_batch_requests", "")
	fmt.Fprintln(w, "# HELP mtbert_encoder_passes_total Encoder forward passes.")
	fmt.Fprintln(w, "# TYPE mtbert_encoder_passes_total counter")
	fmt.Fprintf(w, "mtbert_encoder_passes_total %d\n", m.passes.Load())
	fmt.Fprintln(w, "# HELP mtbert_windows_total Windows (sequences) run through the encoder.")
	fmt.Fprintln(w, "# TYPE mtbert_windows_total counter")
	fmt.Fprintf(w, "mtbert_windows_total %d\n", m.windows.Load())
	fmt.Fprintln(w, "# HELP mtbert_tokens_total Padded sub-words run through the encoder by the batcher.")
	fmt.Fprintln(w, "# TYPE mtbert_tokens_total counter")
	fmt.Fprintf(w, "mtbert_tokens_total %d\n", m.tokens)
	rate := 0.0
	if m.busy > 0 {
		rate = float64(m.tokens) / m.busy.Seconds()
	}
	if math.IsNaN(rate) || math.IsInf(rate, 0) {
		rate = 0
	}
	fmt.Fprintln(w, "# HELP mtbert_tokens_per_second Padded sub-words per second of encoder time, since start.")
	fmt.Fprintln(w, "# TYPE mtbert_tokens_per_second gauge")
	fmt.Fprintf(w, "mtbert_tokens_per_second %s\n", strconv.FormatFloat(rate, 'g', -1, 64))
}
