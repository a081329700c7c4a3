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

// TestDashboardReferencesExist proves the dashboard page loads only embedded assets, and that
// every element its script looks up by id ($('…')) is in the page: a renamed element fails here,
// not as a blank dashboard.
func TestDashboardReferencesExist(t *testing.T) {
	html := string(DashboardPage())
	refs := regexp.MustCompile(`(?:src|href)="/dashboard/assets/([^"]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 2 {
		t.Fatalf("dashboard.html loads %d assets, want its script and styles", len(refs))
	}
	for _, m := range refs {
		if _, err := fs.Stat(Assets(), m[1]); err != nil {
			t.Errorf("dashboard.html loads %s, which is not embedded", m[1])
		}
	}
	js, err := fs.ReadFile(Assets(), "dashboard.js")
	if err != nil {
		t.Fatal(err)
	}
	ids := regexp.MustCompile(`\$\('([^']+)'\)`).FindAllStringSubmatch(string(js), -1)
	if len(ids) == 0 {
		t.Fatal("dashboard.js looks up no elements: the id pattern of this test no longer matches it")
	}
	for _, m := range ids {
		if !strings.Contains(html, `id="`+m[1]+`"`) {
			t.Errorf("dashboard.js uses element #%s, which dashboard.html does not have", m[1])
		}
	}
	for _, m := range regexp.MustCompile(`fillTable\('([^']+)'`).FindAllStringSubmatch(string(js), -1) {
		if !regexp.MustCompile(`<table id="` + m[1] + `"><thead>|<table id="` + m[1] + `">\s*<thead>`).MatchString(html) {
			t.Errorf("dashboard.js fills table #%s, which dashboard.html lacks (with a thead)", m[1])
		}
	}
}
