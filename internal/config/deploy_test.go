package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/orgsvc/orgsvc/internal/config"
)

// configVars are the variable names config.Config reads.
func configVars(t *testing.T) map[string]bool {
	t.Helper()
	vars := map[string]bool{}
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		vars[typ.Field(i).Tag.Get("envconfig")] = true
	}
	return vars
}

// TestComposeFile loads docker-compose.yml the way docker compose does
// (compose-go, with .env made from .env.example) and checks what the
// README promises of it.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"docker-compose.yml", ".env.example"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		name := f
		if f == ".env.example" {
			name = ".env"
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir), cli.WithName("orgsvc"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	app, err := p.GetService("app")
	if err != nil {
		t.Fatal(err)
	}
	mongo, err := p.GetService("mongo")
	if err != nil {
		t.Fatal(err)
	}

	// The app's environment: .env plus MONGO_URI, every name one the
	// configuration knows.
	vars := configVars(t)
	for name := range app.Environment {
		if !vars[name] {
			t.Errorf("app environment sets %s, which config.Config does not read", name)
		}
	}
	if uri := app.Environment["MONGO_URI"]; uri == nil || !strings.Contains(*uri, "mongo:27017") {
		t.Errorf("app MONGO_URI does not point at the mongo service: %v", uri)
	}
	if len(app.EnvFiles) != 1 || filepath.Base(app.EnvFiles[0].Path) != ".env" {
		t.Errorf("app env_file: %+v, want .env", app.EnvFiles)
	}
	if app.Build == nil || app.Build.Context != dir {
		t.Errorf("app is not built from the repository: %+v", app.Build)
	}
	if !strings.HasPrefix(mongo.Image, "mongo:7") {
		t.Errorf("mongo image %q, want mongo:7", mongo.Image)
	}

	// The app waits for mongo's healthcheck.
	if mongo.HealthCheck == nil || len(mongo.HealthCheck.Test) == 0 || mongo.HealthCheck.Disable {
		t.Error("mongo has no healthcheck")
	}
	if dep, ok := app.DependsOn["mongo"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("app does not wait for mongo to be healthy: %+v", app.DependsOn)
	}

	// The app probes itself (distroless has no curl) and comes back.
	if hc := app.HealthCheck; hc == nil || hc.Disable || strings.Join(hc.Test, " ") != "CMD /orgsvc health" {
		t.Errorf("app healthcheck %+v, want CMD /orgsvc health", app.HealthCheck)
	}
	for _, s := range []types.ServiceConfig{app, mongo} {
		if s.Restart != types.RestartPolicyUnlessStopped {
			t.Errorf("%s restart %q, want unless-stopped", s.Name, s.Restart)
		}
	}

	// mongo's data is in a named volume.
	var named bool
	for _, v := range mongo.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == "/data/db" {
			if _, declared := p.Volumes[v.Source]; declared {
				named = true
			}
		}
	}
	if !named {
		t.Errorf("mongo's /data/db is not a declared named volume: %+v", mongo.Volumes)
	}
}

// TestDockerfileBuildsWithMake: the image's build step is make build, the
// command CI and developers run.
func TestDockerfileBuildsWithMake(t *testing.T) {
	t.Parallel()
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^RUN .*(\n\s+.*)*make build`).Match(df) {
		t.Error("the Dockerfile's build step does not run make build")
	}
	if !regexp.MustCompile(`(?m)^USER \S+`).Match(df) || regexp.MustCompile(`(?m)^USER (root|0)\b`).Match(df) {
		t.Error("the image does not run as a non-root user")
	}
	// The Go image satisfies go.mod's go line.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	got := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)$`).FindSubmatch(df)
	if want == nil || got == nil || string(got[1]) != string(want[1]) {
		t.Errorf("Dockerfile GO_VERSION %q, want go.mod's %q", got, want)
	}
	if !strings.Contains(string(df), `CMD ["/orgsvc", "health"]`) {
		t.Error("the image has no HEALTHCHECK through orgsvc health")
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^build:\n\t\$\(BUILD\)$`).Match(mk) || !strings.Contains(string(mk), "CGO_ENABLED=0") {
		t.Error("make build is not the static $(BUILD) command")
	}
	if !regexp.MustCompile(`(?m)^run: build\n\t\./\$\(BINARY\)$`).Match(mk) {
		t.Error("make run does not run the built binary")
	}
}
