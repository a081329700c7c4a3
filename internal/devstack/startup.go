package devstack

import (
	"context"
	"sync"
)

// Startup is what `anyops dev` waits for, in order, before it says it is running and /readyz
// answers 200: stages such as the demo fleet and the console host, each begun with a way to
// tell how far it is. Once every stage has finished it stays ready: a later fault is the
// fleet's news (the dashboard, FleetSync), not a start that has not happened.
type Startup struct {
	mu     sync.Mutex
	stages []*stage
	ready  chan struct{}
}

type stage struct {
	name     string
	state    string // "pending", "running", "done", "failed"
	progress func(context.Context) string
	err      error
}

// NewStartup waits for the named stages, in that order.
func NewStartup(names ...string) *Startup {
	s := &Startup{ready: make(chan struct{})}
	for _, n := range names {
		s.stages = append(s.stages, &stage{name: n, state: "pending"})
	}
	if len(names) == 0 {
		close(s.ready)
	}
	return s
}

func (s *Startup) stage(name string) *stage {
	for _, st := range s.stages {
		if st.name == name {
			return st
		}
	}
	panic("devstack: no startup stage " + name) // a programming error: stages are fixed
}

// Begin marks the stage running; progress (nil: none) says how far it is when /readyz asks.
func (s *Startup) Begin(name string, progress func(context.Context) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stage(name)
	st.state, st.progress = "running", progress
}

// Finish marks the stage done; when it is the last one, the stack is ready.
func (s *Startup) Finish(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stage(name).state = "done"
	for _, st := range s.stages {
		if st.state != "done" {
			return
		}
	}
	select {
	case <-s.ready:
	default:
		close(s.ready)
	}
}

// Fail marks the stage failed: the stack never becomes ready, and /readyz says why.
func (s *Startup) Fail(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stage(name)
	st.state, st.err = "failed", err
}

// Ready is closed once every stage has finished.
func (s *Startup) Ready() <-chan struct{} { return s.ready }

// Waiting lists what is still coming, one "stage: how far it is" per stage not yet done (the
// api's Deps.Startup); none once ready.
func (s *Startup) Waiting(ctx context.Context) []string {
	s.mu.Lock()
	type view struct {
		name, state string
		progress    func(context.Context) string
		err         error
	}
	var open []view
	for _, st := range s.stages {
		if st.state != "done" {
			open = append(open, view{st.name, st.state, st.progress, st.err})
		}
	}
	s.mu.Unlock()
	// Progress may ask Temporal: never under the lock.
	var out []string
	for i, v := range open {
		switch {
		case v.state == "failed":
			out = append(out, v.name+": failed: "+v.err.Error())
		case v.state == "running" && v.progress != nil:
			out = append(out, v.name+": "+v.progress(ctx))
		case v.state == "running":
			out = append(out, v.name+": in progress")
		case i > 0:
			out = append(out, v.name+": after "+open[i-1].name)
		default:
			out = append(out, v.name+": not started")
		}
	}
	return out
}
