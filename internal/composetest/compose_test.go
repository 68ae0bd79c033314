package composetest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/mfaflow/mfaflow/internal/config"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/workflows"
)

const (
	composeFile = "docker-compose.yml"
	dockerfile  = "Dockerfile"
)

// requiredSecrets are the variables docker-compose.yml marks required
// (${VAR:?…}); loading must fail without any one of them.
var requiredSecrets = []string{
	"MFAFLOW_SECRET_KEYS",
	"MFAFLOW_CONSOLE_API_KEYS",
	"MFAFLOW_JWT_HS256_SECRET",
	"MFAFLOW_NOTIFIER_URL",
	"MFAFLOW_NOTIFIER_SECRET",
	"MFAFLOW_CONSOLE_URL",
	"MINIO_KMS_SECRET_KEY",
}

// repoRoot returns the module root, two levels above this package.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		tb.Fatalf("module root not found at %s: %v", root, err)
	}
	return root
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// secretEnv is what an operator exports before `docker compose up`: every
// required secret, in the formats the header of docker-compose.yml shows.
func secretEnv(tb testing.TB) map[string]string {
	tb.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		tb.Fatal(err)
	}
	return map[string]string{
		"MFAFLOW_SECRET_KEYS":      "k1:" + base64.StdEncoding.EncodeToString(key),
		"MFAFLOW_CONSOLE_API_KEYS": randomHex(tb, 24),
		"MFAFLOW_JWT_HS256_SECRET": randomHex(tb, 32),
		"MFAFLOW_NOTIFIER_URL":     "https://notifier.example.internal/hooks/mfa",
		"MFAFLOW_NOTIFIER_SECRET":  randomHex(tb, 32),
		"MFAFLOW_CONSOLE_URL":      "none",
		"MINIO_KMS_SECRET_KEY":     "mfaflow-key:" + base64.StdEncoding.EncodeToString(key),
	}
}

// load loads docker-compose.yml the way `docker compose` does, with env as
// the only variables (no OS environment, no .env file).
func load(tb testing.TB, env map[string]string) (*types.Project, error) {
	tb.Helper()
	root := repoRoot(tb)
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, composeFile)},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(list),
	)
	if err != nil {
		tb.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func mustLoad(tb testing.TB, env map[string]string) *types.Project {
	tb.Helper()
	p, err := load(tb, env)
	if err != nil {
		tb.Fatalf("load %s: %v", composeFile, err)
	}
	return p
}

func service(tb testing.TB, p *types.Project, name string) types.ServiceConfig {
	tb.Helper()
	s, err := p.GetService(name)
	if err != nil {
		tb.Fatalf("service %q: %v", name, err)
	}
	return s
}

// environ flattens a service's environment; a variable without a value would
// be taken from the host at run time, which the file must not rely on.
func environ(tb testing.TB, s types.ServiceConfig) map[string]string {
	tb.Helper()
	env := map[string]string{}
	for k, v := range s.Environment {
		if v == nil {
			tb.Errorf("%s: %s has no value (it would leak in from the host)", s.Name, k)
			continue
		}
		env[k] = *v
	}
	return env
}

func configVars() map[string]bool {
	m := map[string]bool{}
	for _, v := range config.Vars {
		m[v.Env] = true
	}
	return m
}

func TestServicesExist(t *testing.T) {
	p := mustLoad(t, secretEnv(t))
	for _, name := range []string{
		"postgres", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui",
		"minio", "migrate", "api", "worker",
	} {
		t.Run(name, func(t *testing.T) {
			service(t, p, name)
		})
	}
}

// mfaflowRoles are the three services that run the mfaflow image.
var mfaflowRoles = []struct {
	service  string
	command  string
	needHTTP bool // RequireProduction(needHTTP) must pass (serve: true, worker: false)
	checkReq bool // migrate needs only DATABASE_URL
	denied   []string
}{
	{service: "api", command: "serve", needHTTP: true, checkReq: true},
	{service: "worker", command: "worker", checkReq: true, denied: []string{
		"MFAFLOW_HTTP_ADDR", "MFAFLOW_CONSOLE_API_KEYS", "MFAFLOW_JWT_HS256_SECRET", "MFAFLOW_JWKS_URL",
	}},
	{service: "migrate", command: "migrate", denied: []string{
		"MFAFLOW_SECRET_KEYS", "MFAFLOW_CONSOLE_API_KEYS", "MFAFLOW_JWT_HS256_SECRET",
		"MFAFLOW_NOTIFIER_SECRET", "MFAFLOW_CONSOLE_SECRET", "S3_SECRET_KEY",
	}},
}

func TestMfaflowServices(t *testing.T) {
	root := repoRoot(t)
	p := mustLoad(t, secretEnv(t))
	known := configVars()
	for _, r := range mfaflowRoles {
		t.Run(r.service, func(t *testing.T) {
			s := service(t, p, r.service)

			if s.Build == nil {
				t.Fatalf("no build section: want this repo's %s", dockerfile)
			}
			if ctx := filepath.Clean(s.Build.Context); ctx != root {
				t.Errorf("build context = %q, want the repository root %q", ctx, root)
			}
			if s.Build.Dockerfile != dockerfile || s.Build.DockerfileInline != "" {
				t.Errorf("build dockerfile = %q (inline %t), want %q", s.Build.Dockerfile, s.Build.DockerfileInline != "", dockerfile)
			}
			if len(s.Entrypoint) != 0 {
				t.Errorf("entrypoint overridden to %q; the image's /mfaflow must run", s.Entrypoint)
			}
			if want := []string{r.command}; !slices.Equal(s.Command, want) {
				t.Errorf("command = %q, want %q", s.Command, want)
			}

			env := environ(t, s)
			for k := range env {
				if !known[k] {
					t.Errorf("passes %s, which internal/config.Vars does not list", k)
				}
			}
			for _, k := range r.denied {
				if _, ok := env[k]; ok {
					t.Errorf("passes %s, which %s does not need", k, r.command)
				}
			}
			cfg, rest, err := config.Load(r.command, nil, func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("config.Load with the service's environment: %v", err)
			}
			if len(rest) != 0 {
				t.Errorf("unexpected arguments %q", rest)
			}
			if cfg.DatabaseURL == "" {
				t.Errorf("DATABASE_URL not set")
			}
			if r.checkReq {
				if err := cfg.RequireProduction(r.needHTTP); err != nil {
					t.Errorf("RequireProduction(%t): %v", r.needHTTP, err)
				}
				if _, err := mfa.ParseKeyring(cfg.SecretKeys); err != nil {
					t.Errorf("MFAFLOW_SECRET_KEYS does not reach the service intact: %v", err)
				}
			}
		})
	}
}

func TestMfaflowDependencies(t *testing.T) {
	p := mustLoad(t, secretEnv(t))
	tests := []struct {
		service, on, condition string
	}{
		{"migrate", "postgres", types.ServiceConditionHealthy},
		{"api", "postgres", types.ServiceConditionHealthy},
		{"api", "migrate", types.ServiceConditionCompletedSuccessfully},
		{"api", "temporal", types.ServiceConditionHealthy},
		{"api", "temporal-namespace", types.ServiceConditionCompletedSuccessfully},
		{"api", "minio", types.ServiceConditionHealthy},
		{"worker", "postgres", types.ServiceConditionHealthy},
		{"worker", "migrate", types.ServiceConditionCompletedSuccessfully},
		{"worker", "temporal", types.ServiceConditionHealthy},
		{"worker", "temporal-namespace", types.ServiceConditionCompletedSuccessfully},
		{"worker", "minio", types.ServiceConditionHealthy},
		{"temporal", "temporal-schema", types.ServiceConditionCompletedSuccessfully},
		{"temporal-schema", "postgres", types.ServiceConditionHealthy},
		{"temporal-namespace", "temporal", types.ServiceConditionHealthy},
		{"temporal-ui", "temporal", types.ServiceConditionHealthy},
	}
	for _, tt := range tests {
		t.Run(tt.service+"->"+tt.on, func(t *testing.T) {
			d, ok := service(t, p, tt.service).DependsOn[tt.on]
			if !ok {
				t.Fatalf("%s does not depend on %s", tt.service, tt.on)
			}
			if d.Condition != tt.condition {
				t.Errorf("condition = %q, want %q", d.Condition, tt.condition)
			}
		})
	}
	// A condition "healthy" needs a health check on the other side.
	for _, name := range []string{"postgres", "temporal", "minio"} {
		if hc := service(t, p, name).HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
			t.Errorf("%s has no health check", name)
		}
	}
	// One-shot services must not be restarted once they have succeeded.
	for _, name := range []string{"migrate", "temporal-schema", "temporal-namespace"} {
		if r := service(t, p, name).Restart; r != types.RestartPolicyNo {
			t.Errorf("%s: restart = %q, want %q", name, r, types.RestartPolicyNo)
		}
	}
}

// TestAddresses checks that the mfaflow services reach the other services by
// their compose names, with the credentials those services are given.
func TestAddresses(t *testing.T) {
	p := mustLoad(t, secretEnv(t))
	pg := environ(t, service(t, p, "postgres"))
	minio := environ(t, service(t, p, "minio"))
	ns := environ(t, service(t, p, "temporal-namespace"))
	temporalDB := environ(t, service(t, p, "temporal"))

	hostPort := func(t *testing.T, v string) (string, string) {
		t.Helper()
		h, port, err := net.SplitHostPort(v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		return h, port
	}
	for _, name := range []string{"api", "worker", "migrate"} {
		env := environ(t, service(t, p, name))
		t.Run(name+"/DATABASE_URL", func(t *testing.T) {
			u, err := url.Parse(env["DATABASE_URL"])
			if err != nil {
				t.Fatal(err)
			}
			if u.Hostname() != "postgres" || u.Port() != "5432" {
				t.Errorf("host = %q, want postgres:5432", u.Host)
			}
			service(t, p, u.Hostname())
			pw, _ := u.User.Password()
			if u.User.Username() != pg["POSTGRES_USER"] || pw != pg["POSTGRES_PASSWORD"] {
				t.Errorf("credentials do not match the postgres service's POSTGRES_USER/POSTGRES_PASSWORD")
			}
			if db := strings.TrimPrefix(u.Path, "/"); db != pg["POSTGRES_DB"] {
				t.Errorf("database = %q, want the postgres service's POSTGRES_DB %q", db, pg["POSTGRES_DB"])
			}
			if db := strings.TrimPrefix(u.Path, "/"); db == "temporal" || db == "temporal_visibility" {
				t.Errorf("mfaflow must not share Temporal's database %q", db)
			}
		})
		if name == "migrate" {
			continue
		}
		t.Run(name+"/TEMPORAL_ADDRESS", func(t *testing.T) {
			h, port := hostPort(t, env["TEMPORAL_ADDRESS"])
			if h != "temporal" || port != "7233" {
				t.Errorf("TEMPORAL_ADDRESS = %q, want temporal:7233", env["TEMPORAL_ADDRESS"])
			}
			service(t, p, h)
			if env["TEMPORAL_NAMESPACE"] != ns["TEMPORAL_NAMESPACE"] {
				t.Errorf("TEMPORAL_NAMESPACE = %q, but temporal-namespace creates %q", env["TEMPORAL_NAMESPACE"], ns["TEMPORAL_NAMESPACE"])
			}
		})
		t.Run(name+"/S3_ENDPOINT", func(t *testing.T) {
			h, port := hostPort(t, env["S3_ENDPOINT"])
			if h != "minio" || port != "9000" {
				t.Errorf("S3_ENDPOINT = %q, want minio:9000", env["S3_ENDPOINT"])
			}
			service(t, p, h)
			if env["S3_ACCESS_KEY"] != minio["MINIO_ROOT_USER"] || env["S3_SECRET_KEY"] != minio["MINIO_ROOT_PASSWORD"] {
				t.Errorf("S3 credentials do not match the minio service's root user")
			}
			if tls, _ := strconv.ParseBool(env["S3_USE_TLS"]); tls {
				t.Errorf("S3_USE_TLS = true, but the minio service serves plain HTTP")
			}
		})
	}
	t.Run("temporal/postgres", func(t *testing.T) {
		if temporalDB["DB"] != "postgres12" || temporalDB["POSTGRES_SEEDS"] != "postgres" {
			t.Errorf("temporal: DB=%q POSTGRES_SEEDS=%q, want postgres12 on postgres", temporalDB["DB"], temporalDB["POSTGRES_SEEDS"])
		}
		if temporalDB["POSTGRES_USER"] != pg["POSTGRES_USER"] || temporalDB["POSTGRES_PWD"] != pg["POSTGRES_PASSWORD"] {
			t.Errorf("temporal: credentials do not match the postgres service")
		}
	})
	t.Run("temporal-ui", func(t *testing.T) {
		if got := environ(t, service(t, p, "temporal-ui"))["TEMPORAL_ADDRESS"]; got != "temporal:7233" {
			t.Errorf("TEMPORAL_ADDRESS = %q, want temporal:7233", got)
		}
	})
}

func TestPorts(t *testing.T) {
	p := mustLoad(t, secretEnv(t))
	api := service(t, p, "api")
	addr := environ(t, api)["MFAFLOW_HTTP_ADDR"]
	_, listen, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("api MFAFLOW_HTTP_ADDR %q: %v", addr, err)
	}
	if !slices.ContainsFunc(api.Ports, func(pc types.ServicePortConfig) bool {
		return strconv.Itoa(int(pc.Target)) == listen && pc.Published == "8080"
	}) {
		t.Errorf("api publishes %+v, want 8080 -> container port %s", api.Ports, listen)
	}
	// Operator tools (Temporal gRPC and UI, MinIO console) stay on loopback.
	for name, s := range p.Services {
		if name == "api" {
			continue
		}
		for _, pc := range s.Ports {
			if pc.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s:%s on every interface; bind it to 127.0.0.1", name, pc.HostIP, pc.Published)
			}
		}
	}
}

func TestSearchAttributes(t *testing.T) {
	p := mustLoad(t, secretEnv(t))
	script := strings.Join(service(t, p, "temporal-namespace").Command, "\n")
	re := regexp.MustCompile(`--name (\w+) --type (\w+)`)
	got := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(script, -1) {
		got[m[1]] = m[2]
	}
	for name, typ := range workflows.SearchAttributes {
		t.Run(name, func(t *testing.T) {
			if got[name] != typ.String() {
				t.Errorf("temporal-namespace creates %s as %q, want %q", name, got[name], typ.String())
			}
		})
	}
	for name := range got {
		if _, ok := workflows.SearchAttributes[name]; !ok {
			t.Errorf("temporal-namespace creates %s, which workflows.SearchAttributes does not list", name)
		}
	}
}

func TestMinIO(t *testing.T) {
	p := mustLoad(t, secretEnv(t))
	s := service(t, p, "minio")
	if s.Build == nil || s.Build.Args["MINIO_VERSION"] == nil {
		t.Fatal("minio: no MINIO_VERSION build argument")
	}
	if v := *s.Build.Args["MINIO_VERSION"]; v != harness.MinIOVersion {
		t.Errorf("minio builds %s, the test harness pins %s", v, harness.MinIOVersion)
	}
	if !slices.Contains(s.Command, "server") || !slices.Contains(s.Command, "/data") || !slices.Contains(s.Command, "--console-address") {
		t.Errorf("minio command = %q, want server /data with a console", s.Command)
	}
	env := environ(t, s)
	name, key, ok := strings.Cut(env["MINIO_KMS_SECRET_KEY"], ":")
	if raw, err := base64.StdEncoding.DecodeString(key); !ok || name == "" || err != nil || len(raw) != 32 {
		t.Errorf("MINIO_KMS_SECRET_KEY does not reach minio as name:base64(32 bytes)")
	}
}

// TestRequiredSecrets proves the ${VAR:?…} markers: without any one secret,
// or with it empty, loading fails and the error names the variable.
func TestRequiredSecrets(t *testing.T) {
	for _, name := range requiredSecrets {
		for _, tc := range []struct {
			how   string
			apply func(env map[string]string)
		}{
			{"unset", func(env map[string]string) { delete(env, name) }},
			{"empty", func(env map[string]string) { env[name] = "" }},
		} {
			t.Run(name+"/"+tc.how, func(t *testing.T) {
				env := secretEnv(t)
				tc.apply(env)
				_, err := load(t, env)
				if err == nil {
					t.Fatalf("loaded without %s", name)
				}
				var missing *template.MissingRequiredError
				if !errors.As(err, &missing) || missing.Variable != name {
					t.Errorf("error = %v, want a missing-required error for %s", err, name)
				}
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
			})
		}
	}
}

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
}

// parseDockerfile splits a Dockerfile into stages of instructions. It knows
// just enough syntax for this repository's Dockerfile: comments, line
// continuations and one instruction per logical line.
func parseDockerfile(tb testing.TB, path string) [][]instruction {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var (
		stages  [][]instruction
		logical strings.Builder
	)
	flush := func() {
		line := strings.TrimSpace(logical.String())
		logical.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				tb.Fatalf("%s: %s before the first FROM", path, in.cmd)
			}
			return
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			logical.WriteString(cont + " ")
			continue
		}
		logical.WriteString(line)
		flush()
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	flush()
	return stages
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(repoRoot(t), dockerfile))
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a builder and a runtime stage", len(stages))
	}
	final := stages[len(stages)-1]
	find := func(stage []instruction, cmd string) []instruction {
		var out []instruction
		for _, in := range stage {
			if in.cmd == cmd {
				out = append(out, in)
			}
		}
		return out
	}

	// The builder compiles ./cmd/mfaflow statically into an output path…
	buildRe := regexp.MustCompile(`\bgo build\b.*-o\s+(\S+)\s+\./cmd/mfaflow\s*$`)
	var built string
	for _, stage := range stages[:len(stages)-1] {
		for _, in := range find(stage, "RUN") {
			if m := buildRe.FindStringSubmatch(in.args); m != nil {
				built = m[1]
				if !strings.Contains(in.args, "CGO_ENABLED=0") || !strings.Contains(in.args, "-trimpath") {
					t.Errorf("go build without CGO_ENABLED=0 -trimpath: %s", in.args)
				}
				if !strings.Contains(in.args, "target=/go/pkg/mod") || !strings.Contains(in.args, "target=/root/.cache/go-build") {
					t.Errorf("go build without module and build cache mounts: %s", in.args)
				}
			}
		}
	}
	if built == "" {
		t.Fatal("no builder stage runs go build -o … ./cmd/mfaflow")
	}

	// …the runtime stage copies exactly that binary…
	var binary string
	for _, in := range find(final, "COPY") {
		f := strings.Fields(in.args)
		if len(f) == 3 && strings.HasPrefix(f[0], "--from=") && f[1] == built {
			binary = f[2]
		}
	}
	if binary == "" {
		t.Fatalf("the runtime stage does not COPY --from the builder's %s", built)
	}

	// …and runs it as the entrypoint, as a non-root user, exposing the API port.
	eps := find(final, "ENTRYPOINT")
	if len(eps) != 1 {
		t.Fatalf("%d ENTRYPOINT instructions in the runtime stage, want 1", len(eps))
	}
	var ep []string
	if err := json.Unmarshal([]byte(eps[0].args), &ep); err != nil {
		t.Fatalf("ENTRYPOINT %s is not exec form: %v", eps[0].args, err)
	}
	if !slices.Equal(ep, []string{binary}) {
		t.Errorf("ENTRYPOINT = %q, want [%q]", ep, binary)
	}
	users := find(final, "USER")
	if len(users) == 0 {
		if from := final[0].args; !strings.HasSuffix(from, ":nonroot") {
			t.Errorf("runtime stage %s sets no USER", from)
		}
	} else if u := users[len(users)-1].args; u == "root" || strings.HasPrefix(u, "0") {
		t.Errorf("runtime stage runs as %q", u)
	}
	if !slices.ContainsFunc(find(final, "EXPOSE"), func(in instruction) bool {
		return slices.Contains(strings.Fields(in.args), "8080")
	}) {
		t.Error("runtime stage does not EXPOSE 8080")
	}
}
