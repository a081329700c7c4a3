// Package web holds the browser side of Anyops, embedded into the binary: the ops dashboard
// (plain JS modules over the REST API), the console page (an xterm.js terminal speaking
// sandboxd's WebSocket protocol), the snippet another site embeds to offer a console, a demo
// page for it, and the vendored xterm.js. The API serves them (api/consoles.go,
// api/dashboard.go); nothing here talks to a server by itself.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static embed
var files embed.FS

// ConsolePage is the HTML of the console page (served at /console).
func ConsolePage() []byte { return mustRead("static/console.html") }

// Assets are the pages' scripts and styles and the vendored xterm.js (served at
// /console/assets/ and /dashboard/assets/).
func Assets() fs.FS { return mustSub("static") }

// Embed is the embed snippet and its demo page (served at /embed/).
func Embed() fs.FS { return mustSub("embed") }

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("web: embedded file missing: " + name)
	}
	return b
}

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic("web: embedded dir missing: " + dir)
	}
	return sub
}

// DashboardPage is the HTML of the ops dashboard (served at /dashboard); its script and
// styles are among Assets (served at /dashboard/assets/).
func DashboardPage() []byte { return mustRead("static/dashboard.html") }
