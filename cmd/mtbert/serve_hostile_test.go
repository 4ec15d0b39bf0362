package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtbert/mtbert/mtl/serve"
)

// TestServeSlowClients serves the fixture with a 1s request deadline and a queue of 2: 50
// connections that send nothing and a client that sends half its body and stalls do not stop
// a normal request from being answered; the stalled client gets a 408 once the body deadline
// (the request deadline, under -body-timeout's default) passes, and holds no admission slot.
// The default listen address is loopback only (issue 14, item 7).
func TestServeSlowClients(t *testing.T) {
	if _, help := runCmd(t, 0, "serve", "-h"); !strings.Contains(help, `listen address (this machine only; -addr :8080 with -token to expose it) (default "127.0.0.1:8080")`) || !strings.Contains(help, "-body-timeout") {
		t.Errorf("serve -h:\n%s", help)
	}
	dir := t.TempDir()
	runCmd(t, 0, "train", "-config", trainCfg, "-out", filepath.Join(dir, "run"), "-quiet")
	model := filepath.Join(dir, "run", "best")
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	o := serveOptions{model: model, addr: "127.0.0.1:0", grace: 5 * time.Second,
		cfg: serve.Config{Timeout: time.Second, MaxQueue: 2, MaxWait: time.Millisecond}}
	go func() { done <- listenAndServe(ctx, o, &logs, func(a string) { addr <- a }) }()
	base := "http://" + <-addr
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
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
	host := strings.TrimPrefix(base, "http://")
	var idle []net.Conn
	for range 50 {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	slow, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "POST /v1/extract HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"text\": \"took")

	extract := func() (int, string) {
		resp, err := http.Post(base+"/v1/extract", "application/json", strings.NewReader(`{"text": "patient took aspirin ."}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := extract(); code != 200 || !strings.Contains(body, "entities") {
		t.Errorf("with 50 idle connections and a stalled body: %d %s", code, body)
	}
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("stalled client: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 408 || !strings.Contains(string(b), "took over 1s") {
		t.Errorf("stalled client: %d %s", resp.StatusCode, b)
	}
	// Both slots are free again: two requests at once are answered.
	codes := make(chan int, 2)
	for range 2 {
		go func() { c, _ := extract(); codes <- c }()
	}
	if a, b := <-codes, <-codes; a != 200 || b != 200 {
		t.Errorf("after the stalled client: %d %d", a, b)
	}
}
