package serve

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/internal/fixture"
	"github.com/mtbert/mtbert/mtl/internal/mtltest"
	"github.com/mtbert/mtbert/mtl/train"
)

// The web page is tested in a real headless browser, Debian's chromium, driven through the
// Chrome DevTools Protocol. Without a browser the tests skip; .ci/run installs it.

// chromiumPath returns the browser to drive, or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MTBERT_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("no chromium (apt-get install chromium, or set MTBERT_CHROMIUM): the browser tests of the web page are skipped")
	return ""
}

// pageWatch collects what the page must not do: throw, log a security or script error
// (a CSP violation), or fetch anything from another origin.
type pageWatch struct {
	mu       sync.Mutex
	problems []string
	urls     []string
}

func (w *pageWatch) check(t *testing.T, origin string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.problems {
		t.Errorf("page: %s", p)
	}
	if len(w.urls) == 0 {
		t.Errorf("no request seen")
	}
	for _, u := range w.urls {
		if !strings.HasPrefix(u, origin+"/") {
			t.Errorf("the page fetched %s, outside %s", u, origin)
		}
	}
}

// newBrowser starts chromium headless with a fresh profile (a temporary --user-data-dir
// that chromedp removes) and returns a tab whose actions must all end within limit.
func newBrowser(t *testing.T, limit time.Duration, w *pageWatch) context.Context {
	t.Helper()
	exe := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // root in a container
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no deadline
		t.Fatalf("starting %s: %v", exe, err)
	}
	if w != nil {
		err := chromedp.Listen(ctx, func(ev any) {
			w.mu.Lock()
			defer w.mu.Unlock()
			switch ev := ev.(type) {
			case *runtime.EventExceptionThrown:
				d := ev.ExceptionDetails
				msg := d.Text
				if d.Exception != nil {
					msg += " " + d.Exception.Description
				}
				w.problems = append(w.problems, "exception: "+msg)
			case *runtime.EventConsoleAPICalled:
				if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
					w.problems = append(w.problems, fmt.Sprintf("console.%s", ev.Type))
				}
			case *log.EventEntryAdded:
				// The network source reports the API's 4xx and 5xx answers, which the
				// tests cause on purpose; anything else (security: CSP) is a fault.
				if ev.Entry.Source != log.EntrySourceNetwork && (ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning) {
					w.problems = append(w.problems, fmt.Sprintf("log %s/%s: %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text))
				}
			case *network.EventRequestWillBeSent:
				w.urls = append(w.urls, ev.Request.URL)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tctx, tcancel := context.WithTimeout(ctx, limit)
	t.Cleanup(tcancel)
	return tctx
}

// browserDo runs browser actions and fails the test on error.
func browserDo(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func browserEval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %.60q: %v", js, err)
	}
	return v
}

// webEntity is one entity as the page shows it or as the API gives it.
type webEntity struct {
	Task  string  `json:"task"`
	Type  string  `json:"type"`
	Start int     `json:"start"`
	End   int     `json:"end"`
	Text  string  `json:"text"`
	Score float64 `json:"score"`
}

func sortEntities(es []webEntity) {
	slices.SortFunc(es, func(a, b webEntity) int {
		return cmp.Or(strings.Compare(a.Task, b.Task), cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End), strings.Compare(a.Type, b.Type))
	})
}

// pageEntities reads the highlighted note: its text, and one entity per data-eid (an entity
// split where it crosses another is several <mark>s whose texts join).
const pageEntities = `(() => {
  const doc = document.getElementById('doc');
  const by = new Map();
  for (const m of doc.querySelectorAll('mark.ent')) {
    let e = by.get(m.dataset.eid);
    if (!e) {
      e = {task: m.dataset.task, type: m.dataset.type, start: Number(m.dataset.start), end: Number(m.dataset.end), score: Number(m.dataset.score), text: ''};
      by.set(m.dataset.eid, e);
    }
    e.text += m.textContent;
  }
  return {text: doc.textContent, hidden: doc.hidden, entities: [...by.values()], markup: doc.querySelectorAll(':not(mark)').length};
})()`

type pageDoc struct {
	Text     string      `json:"text"`
	Hidden   bool        `json:"hidden"`
	Entities []webEntity `json:"entities"`
	Markup   int         `json:"markup"`
}

func readPage(t *testing.T, ctx context.Context) pageDoc {
	t.Helper()
	d := browserEval[pageDoc](t, ctx, pageEntities)
	sortEntities(d.Entities)
	return d
}

// apiEntities asks the API for the note's entities.
func apiEntities(t *testing.T, base, note string, hdr ...string) []webEntity {
	t.Helper()
	code, body, _ := post(t, base+"/v1/extract", mustJSON(t, map[string]string{"text": note}), hdr...)
	if code != 200 {
		t.Fatalf("/v1/extract: %d %s", code, body)
	}
	var res mtl.Result
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	var out []webEntity
	for task, es := range res.Entities {
		for _, e := range es {
			out = append(out, webEntity{task, e.Type, e.Start, e.End, e.Text, e.Score})
		}
	}
	sortEntities(out)
	return out
}

func onlyTask(es []webEntity, task string, keep bool) []webEntity {
	var out []webEntity
	for _, e := range es {
		if (e.Task == task) == keep {
			out = append(out, e)
		}
	}
	return out
}

// extractInPage puts note in the textarea, clicks Extract and waits for the answer.
func extractInPage(t *testing.T, ctx context.Context, note string, viaFile bool) {
	t.Helper()
	if viaFile {
		path := filepath.Join(t.TempDir(), "note.txt")
		if err := os.WriteFile(path, []byte(note), 0o644); err != nil {
			t.Fatal(err)
		}
		browserDo(t, ctx, "loading the file",
			chromedp.Evaluate[chromedp.Void](`delete document.getElementById('note').dataset.loaded`),
			chromedp.SetUploadFiles(chromedp.ID("file"), []string{path}),
			chromedp.WaitReady(chromedp.CSS(`#note[data-loaded="note.txt"]`)),
		)
	} else {
		browserDo(t, ctx, "typing the note", chromedp.SetValue(chromedp.ID("note"), note))
	}
	if got := browserEval[string](t, ctx, `document.getElementById('note').value`); got != note {
		t.Fatalf("the textarea holds %q, want %q", got, note)
	}
	browserDo(t, ctx, "extracting",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('status').dataset.state = ''`),
		chromedp.Click(chromedp.ID("extract")),
		chromedp.WaitReady(chromedp.CSS(`#status[data-state="done"], #status[data-state="error"]`)),
	)
}

// webModel trains the ner fixture together with a second ner task, meds, that tags the same
// drugs as Medication and nothing else, so that the page shows two tasks whose entities
// overlap. 12 epochs tag the fixture perfectly (trainedCheckpoint).
func webModel(t *testing.T) *mtl.Extractor {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Dir(fixture.TrainConfig())
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
		split, ok := strings.CutPrefix(e.Name(), "ner-")
		if !ok {
			continue
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			tok, tag, ok := strings.Cut(l, "\t")
			switch {
			case !ok:
			case strings.HasSuffix(tag, "-Drug"):
				lines[i] = tok + "\t" + strings.TrimSuffix(tag, "Drug") + "Medication"
			default:
				lines[i] = tok + "\tO"
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "meds-"+split), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	meds := "  - name: meds\n    kind: ner\n    format: conll\n    train: meds-train.conll\n    dev: meds-dev.conll\n" +
		"    test: meds-test.conll\n    max_length: 12\n    batch_size: 8\n"
	cfgText := strings.Replace(string(b), "\ntraining:", "\n"+meds+"training:", 1)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := train.LoadConfig(cfgPath, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Training.Epochs, cfg.Training.Dropout = 12, 0
	r, err := train.Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Trainer.RunEpochs(context.Background(), 12, nil); err != nil {
		t.Fatal(err)
	}
	return mtl.NewExtractor(r.Model, r.Tokenizer)
}

// webNote has characters of one UTF-8 byte, two (é, ï), three (☕) and four (the emoji, two
// UTF-16 units in JavaScript), markup that must stay text, and entities after all of them.
const webNote = "café ☕ : patient took aspirin , heparin and insulin for chest pain .\n" +
	"😀 naïve <b>patient</b> took metformin for fever . 😀😀 no cough after heparin ."

// TestWebPageBrowser loads the page in chromium from a server with a real two-NER-task
// model, extracts from a non-ASCII note (typed, then loaded from a file) and checks that the
// highlights equal the API's answer exactly; toggles a task off and on; reads the hover
// details; runs the pair section against /v1/pairs; checks the error shown for a body over
// the limit; and checks the layout of crossing entities on its own.
func TestWebPageBrowser(t *testing.T) {
	chromiumPath(t)
	t0 := time.Now()
	ex := webModel(t)
	s := New(Config{MaxBody: 4096})
	s.SetExtractor(ex)
	hs := httptest.NewServer(s.Handler())
	defer func() {
		hs.Close()
		s.Close()
	}()
	want := apiEntities(t, hs.URL, webNote)
	t.Logf("model trained in %v; the API finds %d entities", time.Since(t0).Round(time.Millisecond), len(want))
	// The test is only worth something if the model finds entities of both tasks, some of
	// them after the emoji (where code points and UTF-16 units differ).
	emoji := len([]rune(webNote[:strings.Index(webNote, "😀")]))
	late := map[string]int{}
	for _, e := range want {
		if e.Start > emoji {
			late[e.Task]++
		}
	}
	if late["ner"] < 2 || late["meds"] < 1 {
		t.Fatalf("the model finds too few entities after the emoji to test the page: %+v", want)
	}

	w := &pageWatch{}
	ctx := newBrowser(t, 2*time.Minute, w)
	t1 := time.Now()
	browserDo(t, ctx, "loading the page",
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitEnabled(chromedp.ID("extract")),
	)
	toggles := browserEval[[]string](t, ctx, `[...document.querySelectorAll('#tasks input[type=checkbox]')].map(c => c.dataset.task + ':' + c.checked)`)
	if !slices.Equal(toggles, []string{"ner:true", "meds:true"}) {
		t.Fatalf("task toggles %q", toggles)
	}
	legend := browserEval[[]string](t, ctx, `[...document.querySelectorAll('#tasks .chip')].map(c => c.dataset.task + ':' + c.dataset.type + ':' + getComputedStyle(c.querySelector('.swatch')).backgroundColor)`)
	if len(legend) != 3 || !strings.HasPrefix(legend[0], "ner:Drug:rgb(") || !strings.HasPrefix(legend[1], "ner:Problem:rgb(") || !strings.HasPrefix(legend[2], "meds:Medication:rgb(") {
		t.Fatalf("legend %q", legend)
	}

	// Typed, then loaded from a file.
	for _, viaFile := range []bool{false, true} {
		extractInPage(t, ctx, webNote, viaFile)
		got := readPage(t, ctx)
		if got.Text != webNote || got.Hidden || got.Markup != 0 {
			t.Fatalf("the page shows %q (hidden %v, %d other elements), want the note", got.Text, got.Hidden, got.Markup)
		}
		if !slices.Equal(got.Entities, want) {
			t.Fatalf("file %v: the page highlights\n%+v\nthe API answers\n%+v", viaFile, got.Entities, want)
		}
	}
	// A file with Windows line ends: the textarea turns them into \n, and the page sends
	// what it shows.
	crlf := strings.ReplaceAll(webNote, "\n", "\r\n")
	path := filepath.Join(t.TempDir(), "crlf.txt")
	if err := os.WriteFile(path, []byte(crlf), 0o644); err != nil {
		t.Fatal(err)
	}
	browserDo(t, ctx, "loading a CRLF file", chromedp.SetUploadFiles(chromedp.ID("file"), []string{path}), chromedp.WaitReady(chromedp.CSS(`#note[data-loaded="crlf.txt"]`)))
	if got := browserEval[string](t, ctx, `document.getElementById('note').value`); got != webNote {
		t.Fatalf("a CRLF file gives %q", got)
	}

	// Toggle meds off: its highlights go, ner's stay; then on again.
	browserDo(t, ctx, "hiding meds", chromedp.Click(chromedp.ID("toggle-meds")), chromedp.WaitNotPresent(chromedp.CSS(`#doc mark[data-task="meds"]`)))
	if got := readPage(t, ctx); !slices.Equal(got.Entities, onlyTask(want, "meds", false)) || got.Text != webNote {
		t.Fatalf("with meds hidden the page highlights %+v", got.Entities)
	}
	rows := browserEval[int](t, ctx, `document.querySelectorAll('#ent-table tbody tr').length`)
	if rows != len(onlyTask(want, "meds", false)) {
		t.Errorf("the entity table has %d rows with meds hidden", rows)
	}
	browserDo(t, ctx, "showing meds", chromedp.Click(chromedp.ID("toggle-meds")), chromedp.WaitReady(chromedp.CSS(`#doc mark[data-task="meds"]`)))
	if got := readPage(t, ctx); !slices.Equal(got.Entities, want) {
		t.Fatalf("with meds shown again the page highlights %+v", got.Entities)
	}

	// Hover: the tooltip gives every entity under the pointer with its offsets and score.
	// Take a drug (ner Drug inside meds Medication).
	var drug webEntity
	for _, e := range want {
		if e.Task == "ner" && e.Type == "Drug" && e.Start > emoji {
			drug = e
			break
		}
	}
	sel := fmt.Sprintf(`#doc mark[data-task="ner"][data-start="%d"]`, drug.Start)
	pt := browserEval[[]float64](t, ctx, fmt.Sprintf(`(() => { const m = document.querySelector('%s'); m.scrollIntoView({block: 'center'}); const r = m.getClientRects()[0]; return [r.left + r.width / 2, r.top + r.height / 2]; })()`, sel))
	browserDo(t, ctx, "hovering", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, pt[0], pt[1]), chromedp.WaitVisible(chromedp.ID("tip")))
	tip := browserEval[string](t, ctx, `document.getElementById('tip').textContent`)
	for _, s := range []string{
		fmt.Sprintf("Drug · ner · characters [%d, %d) · score %.3f", drug.Start, drug.End, drug.Score),
		fmt.Sprintf("Medication · meds · characters [%d, %d)", drug.Start, drug.End),
	} {
		if !strings.Contains(tip, s) {
			t.Errorf("tooltip %q lacks %q", tip, s)
		}
	}

	// Pairs: the page shows /v1/pairs' answer.
	a, b := "patient has chest pain .", "patient has no chest pain ."
	browserDo(t, ctx, "comparing",
		chromedp.SetValue(chromedp.ID("text-a"), a),
		chromedp.SetValue(chromedp.ID("text-b"), b),
		chromedp.Click(chromedp.ID("compare")),
		chromedp.WaitReady(chromedp.CSS(`#pairs[data-state="done"]`)),
	)
	type pairView struct {
		Label string             `json:"label"`
		Score *float64           `json:"score"`
		Probs map[string]float64 `json:"probs"`
	}
	shown := browserEval[map[string]pairView](t, ctx, `Object.fromEntries([...document.querySelectorAll('#pairs .pair-result')].map(c => [c.dataset.task, {
		label: c.dataset.label || '', score: c.dataset.score === undefined ? null : Number(c.dataset.score),
		probs: Object.fromEntries([...c.querySelectorAll('.bar-row')].map(r => [r.dataset.label, Number(r.dataset.prob)]))}]))`)
	code, body, _ := post(t, hs.URL+"/v1/pairs", mustJSON(t, map[string]string{"text_a": a, "text_b": b}))
	var pr PairResponse
	if err := json.Unmarshal([]byte(body), &pr); code != 200 || err != nil {
		t.Fatalf("/v1/pairs: %d %s", code, body)
	}
	if len(shown) != 2 || shown["nli"].Label != pr.Pairs["nli"].Label || len(shown["nli"].Probs) != 3 ||
		shown["sts"].Score == nil || pr.Pairs["sts"].Score == nil || *shown["sts"].Score != *pr.Pairs["sts"].Score {
		t.Fatalf("the page shows %+v, the API answers %s", shown, body)
	}
	for l, p := range pr.Pairs["nli"].Probs {
		if shown["nli"].Probs[l] != p {
			t.Errorf("nli %s: page %v, API %v", l, shown["nli"].Probs[l], p)
		}
	}

	// A pair over the body limit: the 413, and no stale answer.
	browserDo(t, ctx, "comparing a long pair",
		chromedp.SetValue(chromedp.ID("text-a"), strings.Repeat("fever ", 800)),
		chromedp.Click(chromedp.ID("compare")),
		chromedp.WaitReady(chromedp.CSS(`#pairs[data-state="error"]`)),
	)
	if got := browserEval[string](t, ctx, `document.getElementById('error').dataset.status + ' ' + document.querySelectorAll('#pairs > *').length`); got != "413 0" {
		t.Errorf("after a pair over the limit: error status and answers %q, want \"413 0\"", got)
	}

	// A note over the body limit: the 413 and the server's message, and no stale entities.
	extractInPage(t, ctx, strings.Repeat("aspirin ", 600), false)
	msg := browserEval[string](t, ctx, `(() => { const e = document.getElementById('error'); return e.hidden ? '' : e.dataset.status + ' ' + e.textContent; })()`)
	if !strings.HasPrefix(msg, "413 Too large (413): request body over 4096 bytes") {
		t.Errorf("error shown: %q", msg)
	}
	if got := readPage(t, ctx); !got.Hidden || len(got.Entities) != 0 {
		t.Errorf("after the 413 the page still shows %d entities", len(got.Entities))
	}
	// The next success clears the error.
	extractInPage(t, ctx, webNote, false)
	if hidden := browserEval[bool](t, ctx, `document.getElementById('error').hidden`); !hidden {
		t.Errorf("the error stays after a success")
	}

	// Crossing and nested entities, and offsets after a 4-byte character, in layout alone:
	// code points a 😀 b c d é f g h; X [1,5) crosses Y [3,8), which holds Z [3,4).
	lay := browserEval[map[string]any](t, ctx, `(() => {
		const root = document.createElement('div');
		const ents = {t1: [{type: 'X', start: 1, end: 5, score: 0.5}], t2: [{type: 'Y', start: 3, end: 8, score: 0.5}, {type: 'Z', start: 3, end: 4, score: 0.5}, {type: 'W', start: 7, end: 99, score: 0.5}]};
		window.mtbert.layout(root, 'a😀bcdéfgh', ents, ['t1', 't2'], new Map([['t1', 0], ['t2', 1]]));
		const out = {text: root.textContent, html: root.innerHTML.replace(/ style="[^"]*"| data-(task|start|end|score|eid)="[^"]*"| class="ent"/g, '')};
		for (const m of root.querySelectorAll('mark')) out[m.dataset.type] = (out[m.dataset.type] || '') + '[' + m.textContent + ']';
		return out;
	})()`)
	wantLay := map[string]any{
		"text": "a😀bcdéfgh", "X": "[😀bcd]", "Y": "[cd][éfg]", "Z": "[c]",
		"html": `a<mark data-type="X">😀b<mark data-type="Y"><mark data-type="Z">c</mark>d</mark></mark><mark data-type="Y" data-cont="1">éfg</mark>h`,
	}
	for k, v := range wantLay {
		if lay[k] != v {
			t.Errorf("layout %s: %q, want %q", k, lay[k], v)
		}
	}
	w.check(t, hs.URL)
	t.Logf("browser part: %v", time.Since(t1).Round(time.Millisecond))
}

// TestWebPageAuth checks the page against a server with a bearer token whose model is still
// loading: it asks for the token (401), keeps it out of every URL, shows the 503 while the
// model loads, and works once the model is there.
func TestWebPageAuth(t *testing.T) {
	chromiumPath(t)
	ex, err := mtl.LoadExtractor(fixture.TrainedCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	const token = "s3cret-tok"
	s := New(Config{Token: token})
	hs := httptest.NewServer(s.Handler())
	defer func() {
		hs.Close()
		s.Close()
	}()
	w := &pageWatch{}
	ctx := newBrowser(t, 2*time.Minute, w)
	browserDo(t, ctx, "loading the page",
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("auth")),
		chromedp.WaitReady(chromedp.CSS(`#error[data-status="401"]`)),
	)
	if en := browserEval[bool](t, ctx, `!document.getElementById('extract').disabled`); en {
		t.Errorf("Extract is enabled before the model is known")
	}
	browserDo(t, ctx, "giving the token",
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS(`#auth-form button`)),
		chromedp.WaitReady(chromedp.CSS(`#error[data-status="503"]`)),
		chromedp.WaitNotVisible(chromedp.ID("auth")),
	)
	s.SetExtractor(ex) // the page retries after Retry-After
	browserDo(t, ctx, "waiting for the model", chromedp.WaitEnabled(chromedp.ID("extract")))
	note := "patient took aspirin for chest pain ."
	extractInPage(t, ctx, note, false)
	want := apiEntities(t, hs.URL, note, "Authorization", "Bearer "+token)
	if got := readPage(t, ctx); len(want) == 0 || !slices.Equal(got.Entities, want) {
		t.Fatalf("the page highlights %+v, the API answers %+v", got.Entities, want)
	}
	if stored := browserEval[string](t, ctx, `sessionStorage.getItem('mtbert.token') + ' ' + location.href`); stored != token+" "+hs.URL+"/" {
		t.Errorf("session storage and location: %q", stored)
	}
	w.mu.Lock()
	for _, u := range w.urls {
		if strings.Contains(u, token) {
			t.Errorf("the token is in a URL: %s", u)
		}
	}
	w.mu.Unlock()
	w.check(t, hs.URL)
}

// screenshotNote is a held-out note of the synthetic corpus of mtbert demo (seed 1): made from
// templates, no real patient.
const screenshotNote = `DISCHARGE SUMMARY
Name: Joseph Lee  Medical record number: 24208418
Admitted to Sacred Heart Medical Center on 6/13/14.
Ms. Anthony Robinson presents with worsening palpitations; she has known coronary artery disease. The patient was given metformin 400 mEq per rectum for fever. Discontinued simvastatin due to chest pain. A MRI of the brain was obtained and revealed a subdural hematoma. Code status: full code.
Heart regular rate and rhythm, no murmurs.
Appointment with Dr. Martinez in 6 weeks; clinic phone 320-0024.
Transferred from Cedar Valley Hospital on 8 January 1998.`

// TestWebScreenshot writes the README's screenshot of the page when MTBERT_SCREENSHOT names
// a PNG file (relative to the repository root), with the checkpoint MTBERT_SCREENSHOT_MODEL
// (and a window MTBERT_SCREENSHOT_WIDTH pixels wide, 1280 by default):
//
//	go run ./cmd/mtbert demo -out /tmp/demo -quiet
//	MTBERT_SCREENSHOT=docs/serve-page.png MTBERT_SCREENSHOT_MODEL=/tmp/demo/run/best go test ./mtl/serve -run TestWebScreenshot
func TestWebScreenshot(t *testing.T) {
	out := os.Getenv("MTBERT_SCREENSHOT")
	if out == "" {
		t.Skip("set MTBERT_SCREENSHOT=FILE.png and MTBERT_SCREENSHOT_MODEL=DIR to write the screenshot of the page")
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(mtltest.Root(), out)
	}
	dir := os.Getenv("MTBERT_SCREENSHOT_MODEL")
	if dir == "" {
		t.Fatal("MTBERT_SCREENSHOT_MODEL: give a checkpoint, e.g. the run/best folder of mtbert demo -out DIR")
	}
	ex, err := mtl.LoadExtractor(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{})
	s.SetExtractor(ex)
	hs := httptest.NewServer(s.Handler())
	defer func() {
		hs.Close()
		s.Close()
	}()
	w := &pageWatch{}
	ctx := newBrowser(t, 2*time.Minute, w)
	width := int64(1280)
	if v := os.Getenv("MTBERT_SCREENSHOT_WIDTH"); v != "" {
		if _, err := fmt.Sscan(v, &width); err != nil {
			t.Fatalf("MTBERT_SCREENSHOT_WIDTH: %v", err)
		}
	}
	browserDo(t, ctx, "loading the page", chromedp.EmulateViewport(width, 900), chromedp.Navigate(hs.URL+"/"), chromedp.WaitEnabled(chromedp.ID("extract")))
	extractInPage(t, ctx, screenshotNote, false)
	browserDo(t, ctx, "comparing",
		chromedp.SetValue(chromedp.ID("text-a"), "The patient was started on sertraline 400 mcg BID for urinary tract infection."),
		chromedp.SetValue(chromedp.ID("text-b"), "The patient is being treated for urinary tract infection."),
		chromedp.Click(chromedp.ID("compare")),
		chromedp.WaitReady(chromedp.CSS(`#pairs[data-state="done"]`)),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`),
	)
	// Hover over a drug, to show the details.
	pt := browserEval[[]float64](t, ctx, `(() => { const m = document.querySelector('#doc mark[data-type="Drug"]') || document.querySelector('#doc mark'); m.scrollIntoView({block: 'center'}); const r = m.getClientRects()[0]; return [r.left + r.width / 2, r.top + r.height / 2]; })()`)
	browserDo(t, ctx, "hovering", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, pt[0], pt[1]), chromedp.WaitVisible(chromedp.ID("tip")))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(png))
	w.check(t, hs.URL)
}
