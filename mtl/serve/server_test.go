package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/internal/fixture"
	"github.com/mtbert/mtbert/mtl/train"
)

// post sends body to url and returns the status and the answer.
func post(t *testing.T, url, body string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// TestServerBatchedEqualsExtract sends concurrent requests and checks every answer is
// byte-identical to Extract's, and that they shared encoder passes. It runs twice: with the
// fixture's ner max_length (every window padded to it) and with max_length 64, so that windows
// fall in the 16, 32 and 64 length classes and batches mix them.
func TestServerBatchedEqualsExtract(t *testing.T) {
	dir := fixture.TrainedCheckpoint(t)
	unit := "patient took aspirin for fever . "
	notes := []string{
		"patient\u00a0took\u2003aspirin , heparin , insulin and metformin for chest pain daily .",
		"no chest pain after insulin .",
		"",
		"aspirin",
		strings.Repeat(unit, 3),
		strings.Repeat(unit, 7),
		strings.Repeat(unit, 25),
		"took heparin .",
	}
	for _, maxLen := range []int{0, 64} {
		ex, err := mtl.LoadExtractor(dir)
		if err != nil {
			t.Fatal(err)
		}
		if maxLen > 0 {
			ex.Model().Heads[0].Spec.MaxLength = maxLen
		}
		s := New(Config{MaxWait: 200 * time.Millisecond, MaxBatchTokens: 1 << 16})
		var passes atomic.Int64
		lens := map[int]bool{}
		var mu sync.Mutex
		s.passHook = func(n, T int) {
			passes.Add(1)
			mu.Lock()
			lens[T] = true
			mu.Unlock()
		}
		s.SetExtractor(ex)
		hs := httptest.NewServer(s.Handler())
		var want []string
		for _, n := range notes {
			r, err := ex.Extract(context.Background(), n, nil)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, mustJSON(t, r))
		}
		many, err := ex.ExtractMany(context.Background(), notes, nil)
		if err != nil || len(many) != len(notes) {
			t.Fatalf("ExtractMany: %d results, %v", len(many), err)
		}
		for i, r := range many {
			if mustJSON(t, r) != want[i] {
				t.Errorf("ExtractMany, note %d: %s, want %s", i, mustJSON(t, r), want[i])
			}
		}
		got := make([]string, len(notes)+1)
		codes := make([]int, len(notes)+1)
		var wg sync.WaitGroup
		for i := range len(notes) + 1 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := mustJSON(t, map[string]any{"text": notes[min(i, len(notes)-1)]})
				if i == len(notes) {
					body = mustJSON(t, map[string]any{"texts": notes, "tasks": []string{"ner"}})
				}
				codes[i], got[i], _ = post(t, hs.URL+"/v1/extract", body)
			}()
		}
		wg.Wait()
		for i, n := range notes {
			if codes[i] != 200 || got[i] != want[i] {
				t.Errorf("max_length %d, note %q: %d %s\nwant %s", maxLen, n, codes[i], got[i], want[i])
			}
		}
		var all ExtractResults
		if err := json.Unmarshal([]byte(got[len(notes)]), &all); err != nil || len(all.Results) != len(notes) {
			t.Fatalf("texts answer %d %s: %v", codes[len(notes)], got[len(notes)], err)
		}
		for i, r := range all.Results {
			if mustJSON(t, r) != want[i] {
				t.Errorf("texts[%d]: %s, want %s", i, mustJSON(t, r), want[i])
			}
		}
		if p := passes.Load(); p >= int64(len(notes)+1) || p != s.Passes() {
			t.Errorf("%d requests took %d encoder passes (metrics %d)", len(notes)+1, p, s.Passes())
		}
		t.Logf("max_length %d: %d requests, %d passes, padded lengths %v", maxLen, len(notes)+1, passes.Load(), lens)
		if maxLen == 64 && len(lens) < 3 {
			t.Errorf("padded lengths %v, want 16, 32 and 64", lens)
		}

		// Pairs equal Pair's.
		pr, err := ex.Pair(context.Background(), "patient has fever .", "patient has no fever .", nil)
		if err != nil {
			t.Fatal(err)
		}
		code, body, _ := post(t, hs.URL+"/v1/pairs", `{"text_a": "patient has fever .", "text_b": "patient has no fever ."}`)
		if w := mustJSON(t, PairResponse{Pairs: pr}); code != 200 || body != w {
			t.Errorf("pairs: %d %s, want %s", code, body, w)
		}
		hs.Close()
		s.Close()
	}
}

var promLine = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? (-?[0-9.]+([eE][-+]?[0-9]+)?|\+Inf|NaN)$`)

func TestServerErrorsAndMetrics(t *testing.T) {
	ex, err := mtl.LoadExtractor(fixture.TrainedCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{MaxBody: 1000, MaxTokens: 100, MaxQueue: 2, Token: "s3cret"})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	defer s.Close()
	auth := []string{"Authorization", "Bearer s3cret"}

	// Before the model is loaded.
	if code, _ := get(t, hs.URL+"/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, _ := get(t, hs.URL+"/readyz"); code != 503 {
		t.Errorf("readyz before load %d", code)
	}
	if code, _, h := post(t, hs.URL+"/v1/extract", `{"text": "a"}`, auth...); code != 503 || h.Get("Retry-After") == "" {
		t.Errorf("extract before load %d", code)
	}
	s.SetExtractor(ex)
	if code, _ := get(t, hs.URL+"/readyz"); code != 200 {
		t.Errorf("readyz after load %d", code)
	}

	for _, c := range []struct {
		body string
		hdr  []string
		code int
		msg  string
	}{
		{`{"text": "took aspirin ."}`, nil, 401, "bearer"},
		{`{"text": "took aspirin ."}`, []string{"Authorization", "Bearer nope"}, 401, "bearer"},
		{`{"text": "took aspirin ."}`, auth, 200, `"Drug"`},
		{`{"text": "` + strings.Repeat("a", 1100) + `"}`, auth, 413, "over 1000 bytes"},
		{`{"text": "` + strings.Repeat("aspirin ", 100) + `"}`, auth, 413, "sub-words"},
		{"{\"text\": \"took \xffaspirin\"}", auth, 400, "UTF-8 (first bad byte at offset 15)"},
		{`{"text": "a", "note": "b"}`, auth, 400, "unknown field"},
		{`{"text": "a"} {"text": "b"}`, auth, 400, "one JSON object"},
		{`{"text": `, auth, 400, "bad JSON"},
		{`{"text": "a", "texts": ["b"]}`, auth, 400, "not both"},
		{`{}`, auth, 400, `want \"text\" or \"texts\"`},
		{`{"text": "a", "tasks": ["nli"]}`, auth, 400, "not ner"},
		{`{"text": "a", "tasks": ["nope"]}`, auth, 400, "no task"},
	} {
		code, body, _ := post(t, hs.URL+"/v1/extract", c.body, c.hdr...)
		if code != c.code || !strings.Contains(body, c.msg) {
			t.Errorf("%.40q: %d %s, want %d %q", c.body, code, body, c.code, c.msg)
		}
	}
	if code, body, _ := post(t, hs.URL+"/v1/pairs", `{"text_a": "a", "tasks": ["ner"]}`, auth...); code != 400 || !strings.Contains(body, "not a sentence-level task") {
		t.Errorf("pair with ner task: %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", hs.URL+"/v1/extract", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 405 {
		t.Errorf("GET extract: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	req, _ = http.NewRequest("GET", hs.URL+"/v1/model", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var mi struct {
		Tasks   []mtl.TaskSpec
		Encoder map[string]any
	}
	json.NewDecoder(resp.Body).Decode(&mi)
	resp.Body.Close()
	if len(mi.Tasks) != 3 || mi.Tasks[0].Kind != mtl.NER || len(mi.Tasks[0].Labels) != 9 || mi.Encoder["hidden_size"] == nil {
		t.Errorf("model info %+v", mi)
	}

	// A full server answers 503 with Retry-After: hold the batcher in a pass with one request,
	// queue a second (MaxQueue 2).
	hold, held := make(chan struct{}), make(chan struct{}, 1)
	s.passHook = func(int, int) {
		select {
		case held <- struct{}{}:
			<-hold
		default:
		}
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		codes[0], _, _ = post(t, hs.URL+"/v1/extract", `{"text": "took aspirin ."}`, auth...)
	}()
	<-held
	wg.Add(1)
	go func() {
		defer wg.Done()
		codes[1], _, _ = post(t, hs.URL+"/v1/extract", `{"text": "took insulin ."}`, auth...)
	}()
	for deadline := time.Now().Add(5 * time.Second); len(s.queue) < 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	code, body, h := post(t, hs.URL+"/v1/extract", `{"text": "took heparin ."}`, auth...)
	if code != 503 || h.Get("Retry-After") == "" || !strings.Contains(body, "busy") {
		t.Errorf("full queue: %d %s %v", code, body, h)
	}
	close(hold)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Errorf("held requests: %v", codes)
	}

	// Metrics: the Prometheus text format, with the series this server exports.
	if code, _ := get(t, hs.URL+"/metrics"); code != 401 {
		t.Errorf("metrics without token: %d", code)
	}
	req, _ = http.NewRequest("GET", hs.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Errorf("metrics content type %q", resp.Header.Get("Content-Type"))
	}
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !(strings.HasPrefix(l, "# HELP ") || strings.HasPrefix(l, "# TYPE ") || promLine.MatchString(l)) {
			t.Errorf("metrics line %q", l)
		}
	}
	for _, w := range []string{
		`mtbert_http_requests_total{path="/v1/extract",code="413"} 2`,
		`mtbert_http_requests_total{path="/v1/extract",code="503"} 2`,
		`mtbert_http_request_duration_seconds_bucket{path="/v1/extract",le="+Inf"}`,
		"mtbert_queue_depth 0", "mtbert_requests_in_flight 0", "mtbert_queue_rejected_total 1", "mtbert_batch_requests_count",
		"mtbert_encoder_passes_total", "mtbert_tokens_total", "mtbert_tokens_per_second",
	} {
		if !bytes.Contains(b, []byte(w)) {
			t.Errorf("metrics lack %s:\n%s", w, b)
		}
	}
}

func TestPadLength(t *testing.T) {
	for _, c := range [][3]int{{3, 512, 16}, {16, 512, 16}, {17, 512, 32}, {33, 512, 64}, {65, 512, 128}, {129, 512, 192}, {500, 512, 512}, {5, 10, 10}, {12, 10, 12}, {40, 48, 48}} {
		if got := mtl.PadLength(c[0], c[1]); got != c[2] {
			t.Errorf("PadLength(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

// ExampleNew serves a checkpoint with dynamic batching (see Server) until the process
// is stopped; mtbert serve adds the flags, the signals and the graceful shutdown.
func ExampleNew() {
	ex, err := mtl.LoadExtractor("run/best")
	if err != nil {
		log.Fatal(err)
	}
	s := New(Config{MaxBatchTokens: 8192, MaxWait: 5 * time.Millisecond})
	s.SetExtractor(ex)
	defer s.Close()
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", s.Handler()))
}

// ExampleExtractor_ExtractMany extracts from several notes in shared forward passes.
func ExampleExtractor_ExtractMany() {
	ex, err := mtl.LoadExtractor("run/best")
	if err != nil {
		log.Fatal(err)
	}
	res, err := ex.ExtractMany(context.Background(), []string{"took aspirin for fever .", "no chest pain ."}, nil)
	if err != nil {
		log.Fatal(err)
	}
	for i, r := range res {
		for task, ents := range r.Entities {
			for _, e := range ents {
				fmt.Printf("note %d, %s: %s %q at characters [%d,%d)\n", i, task, e.Type, e.Text, e.Start, e.End)
			}
		}
	}
}

// FuzzServerHandlers posts arbitrary bodies to /v1/extract and /v1/pairs of a server over an
// untrained fixture model: every answer is a JSON object with an expected status, never a
// panic.
func FuzzServerHandlers(f *testing.F) {
	cfg, err := train.LoadConfig(fixture.TrainConfig(), "")
	if err != nil {
		f.Fatal(err)
	}
	r, err := train.Prepare(cfg)
	if err != nil {
		f.Fatal(err)
	}
	s := New(Config{MaxBody: 4096, MaxTokens: 256, MaxWait: time.Microsecond})
	s.SetExtractor(mtl.NewExtractor(r.Model, r.Tokenizer))
	defer s.Close()
	h := s.Handler()
	for _, seed := range []string{
		`{"text": "patient took aspirin ."}`, `{"texts": ["a", "", "b c"], "tasks": ["ner"]}`,
		`{"text_a": "fever", "text_b": "no fever"}`, `{"text": "\u00e9\u2003x"}`, "{\"text\": \"\xff\"}",
		`{"text": 1}`, `[]`, `null`, `{"texts": null}`, `{"text": "a"}x`, ``,
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, body string, pairs bool) {
		path := "/v1/extract"
		if pairs {
			path = "/v1/pairs"
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 413:
		default:
			t.Fatalf("%q: status %d %s", body, rec.Code, rec.Body)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%q: answer %q is not a JSON object: %v", body, rec.Body, err)
		}
	})
}

// spaceReader yields n spaces, so that a large body costs the client no memory.
type spaceReader struct{ n int }

func (r *spaceReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = ' '
	}
	r.n -= k
	return k, nil
}

// TestServerOverload offers 24 times what the server holds at once (a queue of 4): 96
// concurrent requests, each with its own note of about 240 KB (a sentence and spaces) and its
// own X-Request-Id; every 8th body is over MaxBody and every 12th note over MaxTokens. The
// batcher is held in its first encoder pass until every request but the 4 the server admits
// has been answered, then released. Every request gets exactly one answer, echoing its own
// id: 200 with Extract's answer on its own note (byte for byte), 503 with Retry-After, or 413
// for the oversized ones only; the server's request counters agree with the clients' tallies;
// and while the batcher is held, the live heap holds at most the admitted bodies, not the 96.
func TestServerOverload(t *testing.T) {
	ex, err := mtl.LoadExtractor(fixture.TrainedCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	const (
		n       = 96
		queue   = 4
		pad     = 240 << 10
		maxBody = 250 << 10
	)
	s := New(Config{MaxQueue: queue, MaxWait: 2 * time.Millisecond, MaxBody: maxBody, MaxTokens: 256})
	s.SetExtractor(ex)
	hs := httptest.NewServer(s.Handler())
	defer s.Close()
	defer hs.Close()
	hs.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = n

	type kind int
	const (
		normal kind = iota
		oversize
		tooLong
	)
	kinds := make([]kind, n)
	sentences := make([]string, n)
	want := make([]string, n)
	for i := range n {
		sentences[i] = fmt.Sprintf("patient %d took aspirin for fever . ", i)
		switch {
		case i%8 == 7:
			kinds[i] = oversize
		case i%12 == 5:
			kinds[i] = tooLong
			sentences[i] = strings.Repeat(sentences[i], 20)
		default:
			r, err := ex.Extract(context.Background(), sentences[i]+strings.Repeat(" ", pad), nil)
			if err != nil {
				t.Fatal(err)
			}
			want[i] = mustJSON(t, r)
		}
	}

	// The live heap with the server idle.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	idle := ms.HeapAlloc

	var completed atomic.Int64
	notify := make(chan struct{}, n)
	var held, heldHeap uint64
	var holdErr error
	s.passHook = func(int, int) {
		if held++; held > 1 {
			return
		}
		deadline := time.After(2 * time.Minute)
		for completed.Load() < n-queue {
			select {
			case <-notify:
			case <-deadline:
				holdErr = fmt.Errorf("only %d of %d requests answered while the batcher was held", completed.Load(), n)
				return
			}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heldHeap = ms.HeapAlloc
	}

	type reply struct {
		code  int
		id    string
		retry string
		body  string
		err   error
	}
	replies := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { completed.Add(1); notify <- struct{}{} }()
			size := pad
			if kinds[i] == oversize {
				size = maxBody + 4<<10
			}
			body := io.MultiReader(strings.NewReader(`{"text": "`+sentences[i]), &spaceReader{size}, strings.NewReader(`"}`))
			req, err := http.NewRequest("POST", hs.URL+"/v1/extract", body)
			if err != nil {
				replies[i].err = err
				return
			}
			req.Header.Set("X-Request-Id", fmt.Sprintf("req-%d", i))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hs.Client().Do(req)
			if err != nil {
				replies[i].err = err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			replies[i] = reply{resp.StatusCode, resp.Header.Get("X-Request-Id"), resp.Header.Get("Retry-After"), string(b), err}
		}()
	}
	wg.Wait()
	if holdErr != nil {
		t.Fatal(holdErr)
	}
	count := map[int]int{}
	for i, r := range replies {
		if r.err != nil {
			t.Errorf("request %d: no answer: %v", i, r.err)
			continue
		}
		count[r.code]++
		if r.id != fmt.Sprintf("req-%d", i) {
			t.Errorf("request %d answered with X-Request-Id %q", i, r.id)
		}
		switch {
		case r.code == 503:
			if r.retry == "" || !strings.Contains(r.body, "busy") {
				t.Errorf("request %d: 503 without Retry-After or reason: %s", i, r.body)
			}
		case kinds[i] == normal && r.code == 200:
			if r.body != want[i] {
				t.Errorf("request %d: %s\nwant Extract's %s", i, r.body, want[i])
			}
		case kinds[i] == oversize && r.code == 413 && strings.Contains(r.body, "over 256000 bytes"):
		case kinds[i] == tooLong && r.code == 413 && strings.Contains(r.body, "sub-words"):
		default:
			t.Errorf("request %d (kind %d): %d %s", i, kinds[i], r.code, r.body)
		}
	}
	if count[200]+count[503]+count[413] != n || count[200] == 0 || count[503] < n/2 {
		t.Errorf("answers by status: %v", count)
	}
	// The server counted the same answers: none lost, none twice.
	_, metrics := get(t, hs.URL+"/metrics")
	for _, code := range []int{200, 413, 503} {
		line := fmt.Sprintf("mtbert_http_requests_total{path=\"/v1/extract\",code=\"%d\"} %d\n", code, count[code])
		if count[code] > 0 && !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	if m := regexp.MustCompile(`mtbert_http_requests_total\{path="/v1/extract",code="(\d+)"\}`).FindAllStringSubmatch(metrics, -1); len(m) != len(count) {
		t.Errorf("metrics count codes %v, clients saw %v", m, count)
	}
	// Held with 4 requests admitted, the live heap holds what those 4 hold, not what 96 would
	// (24 times more). An admitted note costs about 13 times its size: the body read into a
	// buffer (up to 2x), the decoded string (1x), and the tokenizer's token slice, whose
	// capacity is len(text)/4 tokens of 40 bytes (10x) even for a note of spaces.
	if grew := int64(heldHeap) - int64(idle); heldHeap == 0 || grew > queue*16*maxBody {
		t.Errorf("live heap while held: %d bytes over idle (%d), over %d", grew, idle, queue*16*maxBody)
	}
	t.Logf("answers by status: %v, %d encoder passes; live heap while held %+.1f MB over idle", count, s.Passes(), float64(int64(heldHeap)-int64(idle))/(1<<20))

	// The batcher waits a second for company; the request's deadline is 50ms.
	s2 := New(Config{MaxWait: time.Second, Timeout: 50 * time.Millisecond})
	s2.SetExtractor(ex)
	hs2 := httptest.NewServer(s2.Handler())
	defer s2.Close()
	defer hs2.Close()
	if code, body, _ := post(t, hs2.URL+"/v1/extract", `{"text": "took aspirin ."}`); code != 504 || !strings.Contains(body, "deadline") {
		t.Errorf("past deadline: %d %s", code, body)
	}
}

// TestServerRequestID checks that a well-formed X-Request-Id is echoed and logged, and that
// any other is neither (it could carry note text or forge log lines).
func TestServerRequestID(t *testing.T) {
	ex, err := mtl.LoadExtractor(fixture.TrainedCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	s := New(Config{MaxWait: time.Millisecond, Log: log.New(lockedWriter{&mu, &logs}, "", 0)})
	s.SetExtractor(ex)
	hs := httptest.NewServer(s.Handler())
	defer s.Close()
	defer hs.Close()
	for id, echo := range map[string]bool{"req-1": true, "a.b:c_D-9": true, strings.Repeat("x", 128): true, strings.Repeat("x", 129): false, "a b": false, "caf\u00e9": false, "took aspirin": false} {
		code, _, h := post(t, hs.URL+"/v1/extract", `{"text": "took aspirin ."}`, "X-Request-Id", id)
		if got := h.Get("X-Request-Id"); code != 200 || (got == id) != echo || (!echo && got != "") {
			t.Errorf("X-Request-Id %q: %d, echoed %q", id, code, got)
		}
	}
	mu.Lock()
	l := logs.String()
	mu.Unlock()
	if !strings.Contains(l, " id=req-1\n") || strings.Contains(l, "aspirin") || strings.Contains(l, "id=a b") {
		t.Errorf("access log:\n%s", l)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestServerHugeNote posts a note of 10 MB: under the default body limit (16 MiB) it is read,
// and refused with 413 for its sub-words (over the default 1<<20); a server with a 1 MiB body
// limit refuses it with 413 before tokenising. Both keep serving.
func TestServerHugeNote(t *testing.T) {
	ex, err := mtl.LoadExtractor(fixture.TrainedCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	huge := mustJSON(t, map[string]string{"text": strings.Repeat("took aspirin for fever . ", 10<<20/25)})
	for _, c := range []struct {
		cfg Config
		msg string
	}{{Config{}, "sub-words"}, {Config{MaxBody: 1 << 20}, "over 1048576 bytes"}} {
		s := New(c.cfg)
		s.SetExtractor(ex)
		hs := httptest.NewServer(s.Handler())
		if code, body, _ := post(t, hs.URL+"/v1/extract", huge); code != 413 || !strings.Contains(body, c.msg) {
			t.Errorf("10 MB note: %d %.200s, want 413 %q", code, body, c.msg)
		}
		if code, body, _ := post(t, hs.URL+"/v1/extract", `{"text": "took aspirin ."}`); code != 200 || !strings.Contains(body, "aspirin") {
			t.Errorf("after the 10 MB note: %d %s", code, body)
		}
		hs.Close()
		s.Close()
	}
}
