package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeTryIt returns the bash blocks of the README's "Try it" section, as
// written.
func readmeTryIt(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## Try it\n")
	if i < 0 {
		t.Fatal(`README.md has no "## Try it" section`)
	}
	s = s[i+1:]
	if j := strings.Index(s[1:], "\n## "); j >= 0 {
		s = s[:j+1]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)\n```bash\n(.*?)\n```\n").FindAllStringSubmatch(s, -1) {
		blocks = append(blocks, m[1])
	}
	if strings.Contains(s, "```sh") {
		t.Error("Try it has a sh block this test would not run; write it as bash")
	}
	return blocks
}

// TestReadmeTryIt runs the README's "Try it" curl blocks, verbatim, against a
// fresh "mfaflow dev" process (the binary, as "make dev" runs it, with its
// default settings; only its ports are picked freely, which the blocks reach
// through $API), in one bash session as a reader pastes them, with the
// variables the banner's export line sets. It uses the real bash, curl and
// jq the README names rather than a runner of its own: what is checked is
// that the lines work as a reader's shell runs them, quoting included. The
// blocks run from a directory laid out like the repository's root as far as
// they need it: bin/mfaflow (what "make build" makes) and scripts/.
func TestReadmeTryIt(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's curl blocks need %s: %v", tool, err)
		}
	}
	blocks := readmeTryIt(t)
	if len(blocks) < 3 {
		t.Fatalf("Try it has %d bash blocks, want the binding, the appeal and the refused appeal", len(blocks))
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(work, "bin", "mfaflow")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "scripts"), filepath.Join(work, "scripts")); err != nil {
		t.Fatal(err)
	}

	p := startDevWith(t, bin, filepath.Join(t.TempDir(), "data"), nil)
	waitReady(t, p.api, 60*time.Second)
	m := regexp.MustCompile(`(?m)^\s+export (API=\S+ KEY=\S+ REVIEWER=\S+ REVIEWER2=\S+ ADMIN=\S+)$`).FindStringSubmatch(p.banner)
	if m == nil {
		t.Fatalf("the banner has no export line of API, KEY, REVIEWER, REVIEWER2 and ADMIN:\n%s", p.banner)
	}
	env := append(os.Environ(), strings.Fields(m[1])...)

	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for i, b := range blocks {
		script.WriteString("echo '@@ block " + string(rune('1'+i)) + "'\n" + b + "\n")
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir, cmd.Env = work, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the Try it blocks failed: %v\n%s", err, out.String())
	}
	t.Logf("output of the Try it blocks:\n%s", out.String())

	// What each answer must say; every answer but the refused appeal is no error.
	for _, want := range []string{
		`"openapi":"/openapi.yaml"`,       // the index
		`"status":"bound"`,                // the binding's confirm
		`"recovery_codes":[`,              //
		`"verified":true`,                 // login with the app's next code
		`"status":"collecting_documents"`, // the appeal filed
		`"sha256":"`,                      // the photo stored
		`"status":"pending_review"`,       // submitted
		`"assignee":"reviewer-1"`,         // claimed
		`"status":"cooling_down"`,         // approved
		`"code":"real_name_not_verified"`, // the unverified account refused
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %s", want)
		}
	}
	if n := strings.Count(out.String(), `"error":`); n != 1 {
		t.Errorf("%d error answers, want only the refused appeal's", n)
	}
}
