// Package web holds the browser side of consoles, embedded into the binary: the console page
// (an xterm.js terminal speaking sandboxd's WebSocket protocol), the snippet another site
// embeds to offer a console, a demo page for it, and the vendored xterm.js. The API serves
// them (api/consoles.go); nothing here talks to a server by itself.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static embed
var files embed.FS

// ConsolePage is the HTML of the console page (served at /console).
func ConsolePage() []byte { return mustRead("static/console.html") }

// Assets are the console page's scripts, styles and the vendored xterm.js (served at
// /console/assets/).
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
