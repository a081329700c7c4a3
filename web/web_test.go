package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestPageReferencesExist proves every asset the console page and its script load, and the
// embed demo's snippet, is embedded: a renamed or missing file fails here, not in a browser.
func TestPageReferencesExist(t *testing.T) {
	assets := Assets()
	html := string(ConsolePage())
	for _, m := range regexp.MustCompile(`(?:src|href)="/console/assets/([^"]+)"`).FindAllStringSubmatch(html, -1) {
		if _, err := fs.Stat(assets, m[1]); err != nil {
			t.Errorf("console.html loads %s, which is not embedded", m[1])
		}
	}
	js, err := fs.ReadFile(assets, "console.js")
	if err != nil {
		t.Fatal(err)
	}
	imports := regexp.MustCompile(`from '\./([^']+)'`).FindAllStringSubmatch(string(js), -1)
	if len(imports) < 2 {
		t.Fatalf("console.js imports %d modules, want xterm and the fit addon", len(imports))
	}
	for _, m := range imports {
		if _, err := fs.Stat(assets, m[1]); err != nil {
			t.Errorf("console.js imports %s, which is not embedded", m[1])
		}
	}
	demo, err := fs.ReadFile(Embed(), "demo.html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(demo), `src="/embed/anyops-embed.js"`) {
		t.Error("demo.html does not load the embed snippet")
	}
	if _, err := fs.Stat(Embed(), "anyops-embed.js"); err != nil {
		t.Error("the embed snippet is not embedded")
	}
}
