package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtbert/mtbert/mtl/serve"
)

// syncBuffer is a bytes.Buffer safe for the server's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe trains the fixture, serves it on loopback, checks an answer against mtbert
// predict's, and shuts down while a request is in flight: the request is still answered.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	runCmd(t, 0, "train", "-config", trainCfg, "-out", filepath.Join(dir, "run"))
	model := filepath.Join(dir, "run", "best")

	note := "patient took\u00a0aspirin for fever ."
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte(note+"\n"), 0o644)
	pred, _ := runCmd(t, 0, "predict", "-model", model, "-in", in)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	addr := make(chan string, 1)
	done := make(chan error, 1)
	o := serveOptions{model: model, addr: "127.0.0.1:0", grace: 10 * time.Second,
		cfg: serve.Config{MaxWait: 400 * time.Millisecond, Token: "tok"}}
	go func() { done <- listenAndServe(ctx, o, &logs, func(a string) { addr <- a }) }()
	base := "http://" + <-addr
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// In flight: the batcher waits up to 400ms for company, and the shutdown starts meanwhile.
	type answer struct {
		code int
		body string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/v1/extract", strings.NewReader(`{"text": "patient took\u00a0aspirin for fever ."}`))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- answer{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- answer{resp.StatusCode, string(b), nil}
	}()
	// Wait until the server holds it, then stop.
	for deadline := time.Now().Add(10 * time.Second); ; {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "\nmtbert_requests_in_flight 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the request never reached the server:\n%s", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	a := <-got
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
	if a.err != nil || a.code != 200 {
		t.Fatalf("in-flight request: %d %v %s\n%s", a.code, a.err, a.body, logs.String())
	}
	// predict's line is {"id","line","entities":...}: its entities equal the server's.
	i := strings.Index(pred, `"entities":`)
	if i < 0 || `{`+strings.TrimSpace(pred[i:]) != strings.TrimSpace(a.body) {
		t.Errorf("serve answered %s\npredict wrote %s", a.body, pred)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still listening after shutdown")
	}
	l := logs.String()
	if !strings.Contains(l, "POST /v1/extract 200") || !strings.Contains(l, "stopped") || strings.Contains(l, "aspirin") {
		t.Errorf("log (must not hold the note):\n%s", l)
	}
	// The request was answered during the shutdown, not before it.
	if i, j := strings.Index(l, "shutting down"), strings.Index(l, "POST /v1/extract 200"); i < 0 || j < i {
		t.Errorf("the request was not in flight at shutdown:\n%s", l)
	}

	// Usage errors.
	runCmd(t, 2, "serve")
	runCmd(t, 2, "serve", "-model", model, "-max-queue", "0")
}
