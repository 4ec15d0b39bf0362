package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/serve"
)

func init() {
	register("serve", "serve a multitask checkpoint over HTTP, with dynamic batching", runServe)
}

const serveHelp = `Endpoints:
  POST /v1/extract  {"text": "..."} or {"texts": ["...", ...]}, optional "tasks": [...]
                    -> {"entities": {task: [entity]}} or {"results": [{"entities": ...}, ...]}
  POST /v1/pairs    {"text_a": "...", "text_b": "...", "tasks": [...]}
                    -> {"pairs": {task: {label, probs} | {score}}}
  GET  /v1/model    tasks (kinds, labels) and encoder config
  GET  /healthz     the process is up;  GET /readyz  the model is loaded
  GET  /metrics     Prometheus text format
Concurrent extract requests share encoder passes (up to -max-batch-tokens padded sub-words,
waiting at most -max-wait); their answers equal mtbert predict's. Past -max-queue requests, 503
with Retry-After; too large a body or note 413; a body slower than -body-timeout 408; bad
JSON or invalid UTF-8 400. POSTs must be Content-Type: application/json (415) and, when they
carry an Origin, come from this server's own origin (403). With a token (-token or
MTBERT_TOKEN), /v1/ and /metrics need "Authorization: Bearer TOKEN". The default address
serves this machine only; to expose the server, listen on -addr :8080 with a -token (behind
TLS). Request bodies are never logged. SIGTERM or SIGINT stops accepting and drains
in-flight requests.
`

// serveOptions are the settings of one server run.
type serveOptions struct {
	model, addr string
	// decode is how notes' ner predictions become entities (-decode).
	decode mtl.NERDecoding
	cfg    serve.Config
	// grace bounds the draining of in-flight requests at shutdown.
	grace time.Duration
	// gpu, when -device names a CUDA device, runs the encoder passes.
	gpu *cuda.Context
	// int8 quantises the encoder at load (-int8).
	int8 bool
}

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "serve -model DIR [-addr 127.0.0.1:8080] [flags]", stderr)
	dev := addDeviceFlag(fs)
	var o serveOptions
	fs.BoolVar(&o.int8, "int8", false, "quantise the encoder's linear layers to int8 at load (per output channel; activations per token at run time); a checkpoint written by mtbert quantize is int8 without it")
	fs.StringVar(&o.model, "model", "", "checkpoint folder written by mtbert train (e.g. RUN/best) (required)")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address (this machine only; -addr :8080 with -token to expose it)")
	fs.IntVar(&o.cfg.MaxBatchTokens, "max-batch-tokens", 2048, "padded sub-words collected into one batch, which bounds a pass's working memory (about 0.1 MB per sub-word for BERT-base)")
	fs.DurationVar(&o.cfg.MaxWait, "max-wait", 5*time.Millisecond, "longest wait for more requests once a batch has one")
	fs.IntVar(&o.cfg.MaxBatchRequests, "max-batch-requests", 0, "most requests in one batch (0: bounded by -max-batch-tokens only; 1: no dynamic batching)")
	fs.IntVar(&o.cfg.MaxQueue, "max-queue", 256, "extract and pair requests admitted at once, queued or running (503 with Retry-After beyond)")
	fs.Int64Var(&o.cfg.MaxBody, "max-body", 16<<20, "largest request body in bytes (413 beyond)")
	fs.IntVar(&o.cfg.MaxTokens, "max-tokens", 1<<20, "most padded sub-words one request may need (413 beyond)")
	fs.DurationVar(&o.cfg.Timeout, "timeout", time.Minute, "deadline of each request (504 beyond)")
	fs.DurationVar(&o.cfg.BodyTimeout, "body-timeout", 10*time.Second, "deadline for reading a request's body (408 beyond); a request takes a -max-queue slot only once its body is in")
	fs.StringVar(&o.cfg.Token, "token", "", "bearer token required on /v1/ and /metrics (default: $MTBERT_TOKEN, which keeps it out of ps; neither: no authentication)")
	fs.DurationVar(&o.grace, "grace", 30*time.Second, "how long shutdown waits for in-flight requests")
	decodeFlag := addDecodeFlag(fs)
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(stderr, "\n"+serveHelp) }
	if err := parse(fs, args); err != nil {
		return err
	}
	gpu, err := openDevice(*dev, true, stderr)
	if err != nil {
		return err
	}
	o.gpu = gpu
	if o.decode, err = mtl.ParseNERDecoding(*decodeFlag); err != nil {
		fs.Usage()
		return errUsage
	}
	if o.model == "" || o.cfg.MaxBatchTokens < 1 || o.cfg.MaxBatchRequests < 0 || o.cfg.MaxWait <= 0 || o.cfg.MaxQueue < 1 || o.cfg.MaxBody < 1 || o.cfg.MaxTokens < 1 || o.cfg.Timeout <= 0 || o.cfg.BodyTimeout <= 0 {
		fs.Usage()
		return errUsage
	}
	if o.cfg.Token == "" {
		o.cfg.Token = os.Getenv("MTBERT_TOKEN")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return listenAndServe(ctx, o, stderr, nil)
}

// listenAndServe listens on o.addr, loads the model (readyz answers 503 meanwhile) and serves until ctx
// is done, then shuts down gracefully: no new connections, in-flight requests answered (for at
// most o.grace). onListen, when not nil, gets the address listened on.
func listenAndServe(ctx context.Context, o serveOptions, stderr io.Writer, onListen func(addr string)) error {
	logger := log.New(stderr, "mtbert serve: ", log.LstdFlags|log.LUTC)
	o.cfg.Log = logger
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	s := serve.New(o.cfg)
	defer s.Close()
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       o.cfg.Timeout,
		WriteTimeout:      o.cfg.Timeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          logger,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	logger.Printf("listening on %s", ln.Addr())
	if onListen != nil {
		onListen(ln.Addr().String())
	}
	loaded := make(chan error, 1)
	go func() {
		t0 := time.Now()
		// A GPU encoder lives as long as the process: requests may use it until shutdown.
		ex, _, err := loadExtractor(o.model, o.gpu, o.int8)
		if err == nil {
			ex.Decoding = o.decode
			s.SetExtractor(ex)
			logger.Printf("model %s loaded in %v: ready", o.model, time.Since(t0).Round(time.Millisecond))
		}
		loaded <- err
	}()
	var failed error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case err := <-served:
			return err
		case err := <-loaded:
			if err != nil {
				failed = err
				break wait
			}
			loaded = nil
		}
	}
	logger.Printf("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	err = hs.Shutdown(sctx)
	if e := <-served; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	if failed != nil {
		return failed
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Printf("stopped")
	return nil
}
