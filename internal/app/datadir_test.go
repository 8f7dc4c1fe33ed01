package app_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/proc"
)

// runRefused runs the program (args after the binary) in dir with env,
// expecting it to refuse at once, and returns its output.
func runRefused(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmdOutput(cmd, 20*time.Second)
	if err == nil {
		t.Fatalf("orgsvc %v succeeded on a DATA_DIR another process owns:\n%s", args, out)
	}
	if _, exited := err.(*exec.ExitError); !exited {
		t.Fatalf("orgsvc %v: %v\n%s", args, err, out)
	}
	return out
}

// cmdOutput runs cmd and returns its combined output, killing it after
// limit.
func cmdOutput(cmd *exec.Cmd, limit time.Duration) (string, error) {
	var out proc.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	timer := time.AfterFunc(limit, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.String(), err
}

// TestDataDirHasOneOwner starts a second server, and a second orgsvc
// check, on the DATA_DIR of a server that is busy with sign-ups and
// renames. Each exits at once with a message naming the directory and the
// owner's pid, and the first server's operations all succeed, with the
// store consistent afterwards.
func TestDataDirHasOneOwner(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := baseEnv("DATA_DIR="+data, "BCRYPT_COST=4", "CREATE_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_ADDRESS=0", "LOGIN_RATE_PER_EMAIL=0")
	owner := runServer(t, dir, freeAddr(t), env)
	pid := strconv.Itoa(owner.cmd.Process.Pid)

	// The owner's load: sign-ups, each followed by two renames.
	var stop atomic.Bool
	var ops atomic.Int64
	var failures []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				name := fmt.Sprintf("load %d %d", c, i)
				email := fmt.Sprintf("a%d.%d@load.example.com", c, i)
				calls := []struct {
					method, path string
					body         map[string]any
					want         int
				}{
					{"POST", "/org/create", map[string]any{"organization_name": name, "email": email, "password": "load-pass-1"}, http.StatusCreated},
					{"POST", "/admin/login", map[string]any{"email": email, "password": "load-pass-1"}, http.StatusOK},
					{"PUT", "/org/update", map[string]any{"organization_name": name, "new_organization_name": name + " b"}, http.StatusOK},
					{"PUT", "/org/update", map[string]any{"organization_name": name + " b", "new_organization_name": name + " c"}, http.StatusOK},
				}
				token := ""
				for _, c := range calls {
					r, err := try(owner.base, c.method, c.path, token, c.body)
					if err == nil && r.status == c.want {
						ops.Add(1)
						if tok, ok := r.body["access_token"].(string); ok {
							token = tok
						}
						continue
					}
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s %s: %d %s %v", c.method, c.path, r.status, r.raw, err))
					mu.Unlock()
					break
				}
			}
		}()
	}

	for i := range 5 {
		out := runRefused(t, dir, append(env[:len(env):len(env)], "HTTP_ADDR="+freeAddr(t)))
		for _, want := range []string{data, "process " + pid, "EMBEDDED_MONGO_ADDR", "MONGO_URI"} {
			if !strings.Contains(out, want) {
				t.Fatalf("second server %d: the message does not name %q:\n%s", i, want, out)
			}
		}
		out = runRefused(t, dir, env, "check")
		if !strings.Contains(out, data) || !strings.Contains(out, "process "+pid) {
			t.Fatalf("second check %d: the message does not name the directory and the owner:\n%s", i, out)
		}
	}
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("the owner failed %d requests while others tried its DATA_DIR (of %d that succeeded):\n%s",
			len(failures), ops.Load(), strings.Join(failures, "\n"))
	}
	if ops.Load() < 8 {
		t.Fatalf("only %d operations ran during the second starts", ops.Load())
	}
	if code := owner.stop(t); code != 0 {
		t.Fatalf("the owner exited with %d", code)
	}
	if code, out := runCheck(t, dir, env); code != 0 || strings.TrimSpace(out) != "consistent" {
		t.Fatalf("check after the load: exit %d:\n%s", code, out)
	}
	t.Logf("%d operations, 5 second servers and 5 second checks refused", ops.Load())
}

// TestKilledOwnerLeavesNoLock: after a kill -9 of the owner, a new
// instance starts on its DATA_DIR at once and has its data.
func TestKilledOwnerLeavesNoLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := baseEnv("DATA_DIR="+filepath.Join(dir, "data"), "BCRYPT_COST=4")
	addr := freeAddr(t)
	s := runServer(t, dir, addr, env)
	mustStatus(t, s.call(t, "POST", "/org/create", "", map[string]any{"organization_name": "Kept", "email": "a@kept.example.com", "password": "kept-pass-1"}), http.StatusCreated)
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t, 10*time.Second); code != -2 {
		t.Fatalf("exit status %d after SIGKILL", code)
	}
	s = runServer(t, dir, addr, env)
	mustStatus(t, s.call(t, "GET", "/org/get?organization_name=Kept", "", nil), http.StatusOK)
}

// TestPortFirst: an instance whose port is taken exits before it opens
// the store, so an operation a crash left unfinished is still there for
// the instance that owns the directory to settle.
func TestPortFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := baseEnv("DATA_DIR="+filepath.Join(dir, "data"), "BCRYPT_COST=4")
	addr := freeAddr(t)
	s := runServer(t, dir, addr, append(env[:len(env):len(env)], "ORGSVC_FAILPOINT=create:after-collection"))
	if r, err := try(s.base, "POST", "/org/create", "", map[string]any{"organization_name": "Half", "email": "a@half.example.com", "password": "half-pass-1"}); err == nil {
		t.Fatalf("the sign-up answered %d: the process should have died", r.status)
	}
	if code := s.wait(t, 30*time.Second); code != failpoint.ExitCode {
		t.Fatalf("exit status %d, want %d", code, failpoint.ExitCode)
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	out := runRefused(t, dir, append(env[:len(env):len(env)], "HTTP_ADDR="+taken.Addr().String()))
	if !strings.Contains(out, "HTTP_ADDR") {
		t.Fatalf("the refusal does not name HTTP_ADDR:\n%s", out)
	}
	if code, out := runCheck(t, dir, env); code != 1 || !strings.Contains(out, "unfinished-operation") {
		t.Fatalf("after the refused start: exit %d, want 1 and the unfinished operation still there:\n%s", code, out)
	}
}

// TestEmbeddedStoreIsPrivate: without EMBEDDED_MONGO_ADDR the embedded
// store listens on a socket in a 0700 DATA_DIR, and the process has no TCP
// listener but HTTP_ADDR; a non-loopback EMBEDDED_MONGO_ADDR is refused
// unless EMBEDDED_MONGO_ALLOW_REMOTE is set.
func TestEmbeddedStoreIsPrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	env := baseEnv("DATA_DIR="+data, "BCRYPT_COST=4")
	addr := freeAddr(t)
	s := runServer(t, dir, addr, env)

	ports := listeningPorts(t, s.cmd.Process.Pid)
	_, httpPort, _ := net.SplitHostPort(addr)
	if len(ports) != 1 || ports[0] != httpPort {
		t.Fatalf("TCP ports listened on: %v, want only HTTP_ADDR's %s", ports, httpPort)
	}
	fi, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("DATA_DIR mode %v, want 0700", fi.Mode().Perm())
	}
	if fi, err := os.Stat(filepath.Join(data, "mongo.sock")); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no socket in DATA_DIR: %v %v", fi, err)
	}
	s.stop(t)

	out := runRefused(t, dir, append(env[:len(env):len(env)], "HTTP_ADDR="+freeAddr(t), "EMBEDDED_MONGO_ADDR=0.0.0.0:0"))
	if !strings.Contains(out, "EMBEDDED_MONGO_ADDR") || !strings.Contains(out, "EMBEDDED_MONGO_ALLOW_REMOTE") {
		t.Fatalf("a wildcard EMBEDDED_MONGO_ADDR was not refused by name:\n%s", out)
	}
}

// listeningPorts lists the TCP ports (v4 and v6) that process pid listens
// on, from /proc.
func listeningPorts(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var ports []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// local_address is field 1, st field 3 (0A: LISTEN), inode field 9.
			if len(fields) > 9 && fields[3] == "0A" && inodes[fields[9]] {
				_, hexPort, _ := strings.Cut(fields[1], ":")
				port, _ := strconv.ParseUint(hexPort, 16, 16)
				ports = append(ports, strconv.FormatUint(port, 10))
			}
		}
		f.Close()
	}
	return ports
}

// TestHealthCommand: `orgsvc health` is the image's probe; it answers 0
// while the configured server serves and 1 once it is gone.
func TestHealthCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := baseEnv("DATA_DIR="+filepath.Join(dir, "data"), "BCRYPT_COST=4")
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	probe := func() (int, string) {
		cmd := exec.Command(binary(t), "health")
		cmd.Dir, cmd.Env = dir, append(env[:len(env):len(env)], "HTTP_ADDR=:"+port)
		out, err := cmdOutput(cmd, 20*time.Second)
		if _, exited := err.(*exec.ExitError); err != nil && !exited {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out
	}
	s := runServer(t, dir, addr, env)
	if code, out := probe(); code != 0 || !strings.Contains(out, "200 OK") {
		t.Fatalf("health while serving: exit %d:\n%s", code, out)
	}
	s.stop(t)
	if code, out := probe(); code != 1 {
		t.Fatalf("health after the stop: exit %d, want 1:\n%s", code, out)
	}
}
