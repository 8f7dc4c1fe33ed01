package chaos

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestChaos runs the chaos test briefly: 20 s of load from eight clients
// on two instances of the built binary, B killed five times, then the
// verification. Every violation fails the test, with what the run found.
func TestChaos(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	sum, err := Run(ctx, Config{
		Binary: bin, Duration: 20 * time.Second, Kills: 5, Clients: 8, Seed: seed,
		Out: t.TempDir(), Progress: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sum.Write(&out, true)
	t.Log("\n" + out.String())
	if sum.Kills == 0 {
		t.Errorf("no kill happened")
	}
	if sum.Acked["doc-create"] == 0 || sum.Acked["signup"] == 0 {
		t.Errorf("the load made no progress: acknowledged %v", sum.Acked)
	}
	for kind, n := range sum.ByKind() {
		t.Errorf("%d violations of kind %s", n, kind)
	}
}

// testWriter sends progress lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
