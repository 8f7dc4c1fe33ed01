package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/app"
	"github.com/orgsvc/orgsvc/internal/proc"
)

// environ is the getenv Run takes over env, the program's whole
// environment, so nothing of the test process's leaks in. Run also reads
// ./.env: the test fails if the working directory has one.
func environ(t *testing.T, env map[string]string) func(string) string {
	t.Helper()
	if _, err := os.Stat(".env"); err == nil {
		wd, _ := os.Getwd()
		t.Fatalf("%s/.env would configure the program under test; remove it", wd)
	}
	return func(name string) string { return env[name] }
}

func TestRunCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		code       int
		stdout     string // must contain, when not empty
		stderr     string // must contain, when not empty
		quietOut   bool   // stdout must stay empty
		quietError bool   // stderr must stay empty
	}{
		{args: []string{"orgsvc", "bogus"}, code: 2, stderr: `unknown command "bogus"`, quietOut: true},
		{args: []string{"orgsvc", "help"}, code: 0, stdout: "Usage:", quietError: true},
		{args: []string{"orgsvc", "--help"}, code: 0, stdout: "Usage:", quietError: true},
		{args: []string{"orgsvc", "serve", "now"}, code: 2, stderr: "serve takes no arguments", quietOut: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr proc.Buffer
			code := app.Run(ctx, tt.args, environ(t, nil), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit status: got %d, want %d\nstderr: %s", code, tt.code, stderr.String())
			}
			if tt.stdout != "" && !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout does not contain %q:\n%s", tt.stdout, stdout.String())
			}
			if tt.stderr != "" && !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.stderr, stderr.String())
			}
			if tt.quietOut && stdout.String() != "" {
				t.Errorf("stdout: got %q, want nothing", stdout.String())
			}
			if tt.quietError && stderr.String() != "" {
				t.Errorf("stderr: got %q, want nothing", stderr.String())
			}
		})
	}
}

func TestRunBadConfiguration(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr proc.Buffer
	code := app.Run(ctx, []string{"orgsvc"}, environ(t, map[string]string{"BCRYPT_COST": "99", "DATA_DIR": dataDir}), &stdout, &stderr)
	if code == 0 {
		t.Fatal("exit status: got 0, want non-zero")
	}
	if !strings.Contains(stderr.String(), "BCRYPT_COST") {
		t.Errorf("stderr does not name BCRYPT_COST:\n%s", stderr.String())
	}
	// It stops before touching the database.
	if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("DATA_DIR: got %v, want it not created", err)
	}
}

// TestRunWithoutConfiguration starts the program as `go run ./cmd/orgsvc`
// would on a fresh clone: no variables, no .env, serving on :8000 over the
// embedded database in ./data. Not parallel: it takes :8000 and a working
// directory of its own.
func TestRunWithoutConfiguration(t *testing.T) {
	var env map[string]string
	if raceEnabled() {
		// Under -race one bcrypt hash at the default cost 12 overruns the
		// default REQUEST_TIMEOUT: that one setting is given.
		env = map[string]string{"REQUEST_TIMEOUT": "2m"}
	}
	t.Chdir(t.TempDir())
	// Make sure whatever answers on :8000 below is this test's server.
	ln, err := net.Listen("tcp", ":8000")
	if err != nil {
		t.Fatalf("port 8000 is busy (%v); this test runs the service with its default address :8000", err)
	}
	ln.Close()

	p := start(t, "http://127.0.0.1:8000", environ(t, env))

	res := p.call(t, "POST", "/org/create", "", map[string]any{
		"organization_name": "Acme Inc", "email": "admin@acme.example.com", "password": "correct-horse-1",
	})
	if res.status != http.StatusCreated {
		t.Fatalf("POST /org/create: got %d, want 201: %s", res.status, res.raw)
	}
	if got, want := res.body["collection_name"], "org_acme_inc"; got != want {
		t.Errorf("collection_name: got %v, want %q", got, want)
	}
	res = p.call(t, "GET", "/org/get?organization_name=Acme+Inc", "", nil)
	if res.status != http.StatusOK {
		t.Errorf("GET /org/get: got %d, want 200: %s", res.status, res.raw)
	}

	fi, err := os.Stat(filepath.Join("data", "jwt_secret"))
	if err != nil {
		t.Fatalf("the JWT secret was not generated: %v", err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("data/jwt_secret mode: got %#o, want 0600", got)
	}
	if _, err := os.Stat(filepath.Join("data", "org_master.sqlite")); err != nil {
		t.Errorf("the embedded master database is not in ./data: %v", err)
	}

	if code := p.stop(t); code != 0 {
		t.Errorf("exit status after cancel: got %d, want 0\nstderr:\n%s", code, p.stderr.String())
	}
}

// TestRestartKeepsSecret starts the service twice on one DATA_DIR: the
// generated secret is kept, so a token from the first run works in the second.
func TestRestartKeepsSecret(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "state")
	secretPath := filepath.Join(dataDir, "jwt_secret")
	run := func() *process {
		addr := freeAddr(t)
		return start(t, "http://"+addr, environ(t, map[string]string{"DATA_DIR": dataDir, "BCRYPT_COST": "4", "HTTP_ADDR": addr}))
	}

	// First run: sign up, log in.
	p := run()
	res := p.call(t, "POST", "/org/create", "", map[string]any{
		"organization_name": "Acme Inc", "email": "admin@acme.example.com", "password": "correct-horse-1",
	})
	if res.status != http.StatusCreated {
		t.Fatalf("POST /org/create: got %d, want 201: %s", res.status, res.raw)
	}
	token := login(t, p, "admin@acme.example.com", "correct-horse-1")
	secret, err := os.ReadFile(secretPath)
	if err != nil {
		t.Fatalf("DATA_DIR/jwt_secret: %v", err)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("first run: exit status %d, want 0\nstderr:\n%s", code, p.stderr.String())
	}

	// Second run on the same DATA_DIR, on another port.
	p = run()

	again, err := os.ReadFile(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret, again) {
		t.Fatal("DATA_DIR/jwt_secret changed across a restart")
	}
	update := map[string]any{"organization_name": "Acme Inc", "email": "owner@acme.example.com"}
	// The route does check signatures ...
	if res := p.call(t, "PUT", "/org/update", tamper(token), update); res.status != http.StatusUnauthorized {
		t.Fatalf("PUT /org/update with a tampered token: got %d, want 401: %s", res.status, res.raw)
	}
	// ... and the first run's token passes.
	if res := p.call(t, "PUT", "/org/update", token, update); res.status != http.StatusOK {
		t.Fatalf("PUT /org/update with the first run's token: got %d, want 200: %s", res.status, res.raw)
	}
	// The new e-mail logs in.
	login(t, p, "owner@acme.example.com", "correct-horse-1")

	if code := p.stop(t); code != 0 {
		t.Errorf("second run: exit status %d, want 0\nstderr:\n%s", code, p.stderr.String())
	}
}

// process is app.Run serving in a goroutine.
type process struct {
	base   string
	cancel context.CancelFunc
	done   chan int
	stderr *proc.Buffer

	once sync.Once
	code int
}

// start runs the program with the environment getenv and waits until
// base/health answers 200. The program is stopped when the test ends.
// Tests that start it are not parallel: opening the embedded store writes
// FerretDB's process-wide version info.
func start(t *testing.T, base string, getenv func(string) string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{base: base, cancel: cancel, done: make(chan int, 1), stderr: &proc.Buffer{}}
	go func() { p.done <- app.Run(ctx, []string{"orgsvc"}, getenv, io.Discard, p.stderr) }()
	t.Cleanup(func() { p.stop(t) })

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case code := <-p.done:
			p.done <- code
			t.Fatalf("Run returned %d before serving\nstderr:\n%s", code, p.stderr.String())
		default:
		}
		res, err := client.Get(base + "/health")
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/health did not answer 200 within 60s (last: %v)\nstderr:\n%s", base, err, p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop cancels the program's context and returns its exit status.
func (p *process) stop(t *testing.T) int {
	t.Helper()
	p.once.Do(func() {
		p.cancel()
		select {
		case p.code = <-p.done:
		case <-time.After(30 * time.Second):
			p.code = -1
			t.Errorf("Run did not return within 30s of cancel\nstderr:\n%s", p.stderr.String())
		}
	})
	return p.code
}

// response is an answer with its JSON object body.
type response struct {
	status int
	raw    []byte
	body   map[string]any
	header http.Header
}

// call sends body as JSON, with a Bearer token when token is not empty.
func (p *process) call(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	return callAt(t, p.base, method, path, token, body)
}

// callAt sends body as JSON to base+path, with a Bearer token when token is
// not empty, and fails the test if no answer comes.
func callAt(t *testing.T, base, method, path, token string, body any) response {
	t.Helper()
	r, err := try(base, method, path, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// try is callAt for a request that may get no answer.
func try(base, method, path, token string, body any) (response, error) {
	headers := map[string]string{}
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return response{}, err
		}
		headers["Content-Type"] = "application/json"
	}
	return tryRaw(base, method, path, token, headers, raw, 30*time.Second)
}

// tryRaw is try for a body already encoded, sent with headers, waiting
// up to timeout for the answer.
func tryRaw(base, method, path, token string, headers map[string]string, body []byte, timeout time.Duration) (response, error) {
	if token != "" {
		headers["Authorization"] = "Bearer " + token
	}
	_, res, raw, err := proc.Fetch(&http.Client{Timeout: timeout}, method, base+path, headers, body)
	if err != nil {
		return response{}, err
	}
	r := response{status: res.StatusCode, raw: raw, header: res.Header}
	_ = json.Unmarshal(raw, &r.body)
	return r, nil
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tamper changes one character in the middle of a JWT's signature.
func tamper(token string) string {
	dot := strings.LastIndexByte(token, '.')
	sig := []byte(token[dot+1:])
	i := len(sig) / 2
	if sig[i] == 'A' {
		sig[i] = 'B'
	} else {
		sig[i] = 'A'
	}
	return token[:dot+1] + string(sig)
}
