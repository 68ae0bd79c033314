package config

import (
	"strings"
	"testing"
)

func TestUsageOfShowsDefaults(t *testing.T) {
	keys := make([]string, 0, len(defaultText))
	for k := range defaultText {
		keys = append(keys, k)
	}
	u := UsageOf(Only(keys)) // Only panics on a name that is no variable
	for k, d := range defaultText {
		if !strings.Contains(u, "$"+k) || !strings.Contains(u, "(default "+d+")") {
			t.Errorf("usage lacks %s with its default %s:\n%s", k, d, u)
		}
	}
	if strings.Contains(u, "DATABASE_URL") {
		t.Errorf("usage of some variables lists another:\n%s", u)
	}
}

func TestLoadOnlyIgnoresOthers(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1/x", "MFAFLOW_HTTP_ADDR": "127.0.0.1:0"}
	c, _, err := LoadOnly("dev", nil, func(k string) string { return env[k] }, []string{"MFAFLOW_HTTP_ADDR"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "" || c.HTTPAddr != "127.0.0.1:0" {
		t.Fatalf("LoadOnly = %+v", c)
	}
	if _, _, err := LoadOnly("dev", []string{"-database-url", "postgres://x@127.0.0.1/x"}, func(string) string { return "" }, []string{"MFAFLOW_HTTP_ADDR"}, nil); err == nil {
		t.Fatal("a flag of another variable was accepted")
	}
}
