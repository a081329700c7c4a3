package workflows

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// callLog is what the testsuite fakes of a fleet share: every call that changes something,
// logged in order under the fake's lock (which also guards the fake's own state).
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) log(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, fmt.Sprintf(format, args...))
}

// index is the position of the first call with the prefix, -1 when none.
func (l *callLog) index(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.IndexFunc(l.calls, func(c string) bool { return strings.HasPrefix(c, prefix) })
}

func (l *callLog) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}
