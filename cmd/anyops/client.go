package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/apiclient"
	"github.com/anyops/anyops/config"
)

// newClientGroup is the parent of a group of API client commands (op, incident): the flags
// that say which API to reach and with which token, shared by its subcommands. connect
// returns the client once the command line is parsed.
func newClientGroup(use, short string) (cmd *cobra.Command, connect func() (*apiclient.Client, error)) {
	var cc config.Client
	cmd = &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	b := config.NewBinder(cmd.PersistentFlags())
	b.BindClient(&cc)
	return cmd, func() (*apiclient.Client, error) {
		if err := b.Load(); err != nil {
			return nil, err
		}
		return apiclient.FromConfig(cc)
	}
}

// collect reads one page of a list, or every page with all, through page (given the cursor).
func collect[T any](all bool, page func(cursor string) (api.List[T], error)) ([]T, error) {
	var items []T
	cursor := ""
	for {
		p, err := page(cursor)
		if err != nil {
			return nil, err
		}
		items = append(items, p.Items...)
		if !all || p.NextCursor == "" {
			return items, nil
		}
		cursor = p.NextCursor
	}
}

// isTerminal reports whether w is a terminal: progress is redrawn there, printed as lines
// anywhere else.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ago words how long ago t was, for tables ("3m ago"); "" for the zero time.
func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return humanDuration(time.Since(t)) + " ago"
}

// humanDuration words a duration to the second, or to the minute past an hour.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d >= time.Hour {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	return d.String()
}

// stamp formats a time for listings: UTC, to the second.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// oneLine keeps a message on one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// requireArg is cobra's ExactArgs(1) with a message that names the argument.
func requireArg(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("want one argument, the %s; got %d", name, len(args))
		}
		return nil
	}
}

// interruptible is the command's context, ended by an interrupt: what follows an operation
// stops following it, and the operation goes on.
func interruptible(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt)
}

// follow asks get for an operation every interval (a second when not positive) until it no
// longer runs (ended) or ctx ends (not ended, no error: the caller was interrupted), showing
// each answer on out: redrawn in place on a terminal (redraw), else a line whenever its
// progress changes. It returns the last answer.
func follow(ctx context.Context, out io.Writer, redraw bool, interval time.Duration,
	get func(context.Context) (op api.Operation, running bool, err error)) (last api.Operation, ended bool, err error) {
	if interval <= 0 {
		interval = time.Second
	}
	drawn, line := 0, "" // lines of the last redraw; the last progress line
	for {
		op, running, err := get(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return op, false, nil
			}
			return op, false, err
		}
		if redraw {
			var b strings.Builder
			printOperation(&b, op, time.Now())
			if drawn > 0 {
				fmt.Fprintf(out, "\x1b[%dA\x1b[J", drawn) // up over the last drawing, clear to the end
			}
			fmt.Fprint(out, b.String())
			drawn = strings.Count(b.String(), "\n")
		} else if l := progressLine(op); l != line {
			fmt.Fprintf(out, "%s %s\n", time.Now().UTC().Format("15:04:05Z"), l)
			line = l
		}
		if !running {
			return op, true, nil
		}
		select {
		case <-ctx.Done():
			return op, false, nil
		case <-time.After(interval):
		}
	}
}
