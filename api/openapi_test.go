package api

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIListsEveryRoute fails when a route is added without documenting it.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`[:*]([a-z_]+)`)
	// Every route, the HTML pages and their static files included (under
	// the ops tag): the contract test holds each answer to the document.
	page := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	s := NewServer(Deps{Dev: true, Web: page, Pages: page})
	for _, r := range s.Routes() {
		method, path, _ := strings.Cut(r, " ")
		path = param.ReplaceAllString(path, "{$1}")
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("openapi.yaml lacks path %s", path)
			continue
		}
		if _, ok := ops[strings.ToLower(method)]; !ok {
			t.Errorf("openapi.yaml lacks %s %s", method, path)
		}
	}
}
