package api

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDocumentNamesEveryCode fails when the server can answer an error
// code that no response of openapi.yaml lists in its enum: every code of
// the error table and of every errorf in the package's source.
func TestDocumentNamesEveryCode(t *testing.T) {
	var doc any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if c, ok := x["code"].(map[string]any); ok {
				if enum, ok := c["enum"].([]any); ok {
					for _, e := range enum {
						if s, ok := e.(string); ok {
							documented[s] = true
						}
					}
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(doc)

	answered := map[string]bool{"invalid_field": true, "unknown_field": true, "locked": true}
	for _, m := range errorMap {
		answered[m.code] = true
	}
	files, _ := filepath.Glob("*.go")
	code := regexp.MustCompile(`(?:errorf\(|Status:\s*)http\.Status\w+,\s*(?:Code:\s*)?"([a-z_]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range code.FindAllSubmatch(src, -1) {
			answered[string(m[1])] = true
		}
	}
	// A method a path does not have is no operation of the document; the
	// info description names its 405 method_not_allowed.
	delete(answered, "method_not_allowed")
	var missing []string
	for c, on := range answered {
		if on && !documented[c] {
			missing = append(missing, c)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("codes the server answers that no response of openapi.yaml lists: %v", missing)
	}
	t.Logf("%d codes the server answers, each listed by the document", len(answered))
	if len(answered) < 40 {
		t.Errorf("found only %d codes in the source; is the pattern stale?", len(answered))
	}
}
