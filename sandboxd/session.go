package sandboxd

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"

	"github.com/anyops/anyops/sandboxd/wire"
)

// Tunables of the terminal stream.
const (
	scrollbackBytes = 64 << 10 // replayed to a client that attaches
	clientQueueLen  = 256      // frames queued per client before it counts as fallen behind
	maxMessageBytes = 64 << 10 // largest WebSocket message sent or accepted
	writeTimeout    = 30 * time.Second
	exitDrainWait   = time.Second // how long to wait for the last output after the command exits
)

// frame is one message queued for a client.
type frame struct {
	text bool
	data []byte
}

// session is one sandbox: its process, its terminal's scrollback and its attached clients.
type session struct {
	info    wire.Sandbox // immutable after creation, except the fields under mu below
	proc    process
	metrics *metrics
	log     *slog.Logger

	mu         sync.Mutex
	ring       *ring
	clients    map[*attachment]struct{}
	lastActive time.Time
	renewed    time.Time // the lease's last renewal (info.Lease > 0)
	endReason  string    // why we ended it; "" while running or when it exited by itself
	exitCode   int
	exitedAt   time.Time

	// onExit, when set, runs once the sandbox's processes are gone and before it counts as
	// exited, so whoever waits for the exit (DELETE) finds its leftovers gone too.
	onExit func()

	inputMu  sync.Mutex    // serialises writes of several clients to the PTY
	pumpDone chan struct{} // closed when the PTY reader has stopped
	exited   chan struct{} // closed when the process is gone and all its output is broadcast
}

func newSession(info wire.Sandbox, proc process, m *metrics, log *slog.Logger) *session {
	return &session{
		info: info, proc: proc, metrics: m, log: log,
		ring: newRing(scrollbackBytes), clients: map[*attachment]struct{}{},
		lastActive: time.Now(), renewed: time.Now(), pumpDone: make(chan struct{}), exited: make(chan struct{}),
	}
}

// renewLease starts the sandbox's lease over: the control plane still knows it.
func (s *session) renewLease() {
	s.mu.Lock()
	s.renewed = time.Now()
	s.mu.Unlock()
}

// run streams the terminal, enforces the timeouts and waits for the command to end. It
// returns once the session has exited.
func (s *session) run() {
	go s.pump()
	go s.watch()
	code, err := s.proc.Wait()
	if err != nil {
		s.log.Warn("wait for sandbox", "sandbox", s.info.ID, "err", err)
	}
	// The PTY delivers the command's last output after it exits; give the reader a moment to
	// broadcast it, then tear the sandbox down, which also ends the reader.
	select {
	case <-s.pumpDone:
	case <-time.After(exitDrainWait):
	}
	if err := s.proc.Destroy(); err != nil {
		s.log.Error("destroy sandbox", "sandbox", s.info.ID, "err", err)
	}
	_ = s.proc.PTY().Close()
	<-s.pumpDone
	if s.onExit != nil {
		s.onExit()
	}

	s.mu.Lock()
	s.exitCode, s.exitedAt = code, time.Now()
	if s.endReason == "" {
		s.endReason = wire.EndExit
	}
	reason := s.endReason
	for a := range s.clients {
		delete(s.clients, a)
		s.metrics.clients.Dec()
	}
	close(s.exited)
	s.mu.Unlock()
	s.metrics.running.Dec()
	s.metrics.exited.WithLabelValues(reason).Inc()
	s.log.Info("sandbox exited", "sandbox", s.info.ID, "code", code, "reason", reason)
}

// pump copies the PTY's output to the scrollback and every client.
func (s *session) pump() {
	defer close(s.pumpDone)
	buf := make([]byte, 32<<10)
	for {
		n, err := s.proc.PTY().Read(buf)
		if n > 0 {
			s.broadcast(append([]byte(nil), buf[:n]...))
		}
		if err != nil {
			return
		}
	}
}

// broadcast never blocks: a client whose queue is full is dropped, so a slow client cannot
// stall the sandbox or the other clients.
func (s *session) broadcast(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring.Write(p)
	for a := range s.clients {
		select {
		case a.queue <- frame{data: p}:
		default:
			s.dropLocked(a)
		}
	}
}

func (s *session) dropLocked(a *attachment) {
	if _, ok := s.clients[a]; !ok {
		return
	}
	delete(s.clients, a)
	s.lastActive = time.Now()
	close(a.dropped)
	s.metrics.clients.Dec()
	s.metrics.dropped.Inc()
	s.log.Warn("client fell behind, dropped", "sandbox", s.info.ID)
}

// watch ends the sandbox at its maximum lifetime, when it has had neither input nor an
// attached client for its idle timeout, or when its lease ran out.
func (s *session) watch() {
	idle, lifetime, lease := time.Duration(s.info.IdleTimeout), time.Duration(s.info.MaxLifetime), time.Duration(s.info.Lease)
	deadline := time.NewTimer(time.Until(s.info.CreatedAt.Add(lifetime)))
	defer deadline.Stop()
	every := min(max(idle/10, 50*time.Millisecond), 5*time.Second)
	if lease > 0 {
		// The lease must end close to its time: the control plane waits for it, with a margin.
		every = min(every, max(lease/20, 10*time.Millisecond))
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-s.exited:
			return
		case <-deadline.C:
			s.end(wire.EndMaxLifetime)
			return
		case now := <-tick.C:
			s.mu.Lock()
			isIdle := len(s.clients) == 0 && now.Sub(s.lastActive) >= idle
			expired := lease > 0 && now.Sub(s.renewed) >= lease
			s.mu.Unlock()
			if expired {
				s.end(wire.EndLeaseExpired)
				return
			}
			if isIdle {
				s.end(wire.EndIdleTimeout)
				return
			}
		}
	}
}

// end kills the sandbox for reason; the first reason given is the one reported.
func (s *session) end(reason string) {
	s.mu.Lock()
	select {
	case <-s.exited:
		s.mu.Unlock()
		return
	default:
	}
	if s.endReason == "" {
		s.endReason = reason
	}
	s.mu.Unlock()
	if err := s.proc.Destroy(); err != nil {
		s.log.Error("destroy sandbox", "sandbox", s.info.ID, "reason", reason, "err", err)
	}
}

// snapshot returns the sandbox's current description.
func (s *session) snapshot() wire.Sandbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := s.info
	info.Clients = len(s.clients)
	select {
	case <-s.exited:
		code, at := s.exitCode, s.exitedAt
		info.State, info.ExitCode, info.ExitedAt, info.EndReason, info.Pid = wire.StateExited, &code, &at, s.endReason, 0
	default:
		info.State, info.Pid = wire.StateRunning, s.proc.Pid()
	}
	return info
}

func (s *session) isExited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

func (s *session) input(p []byte) {
	s.mu.Lock()
	s.lastActive = time.Now()
	s.mu.Unlock()
	if s.isExited() {
		return
	}
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	if _, err := s.proc.PTY().Write(p); err != nil && !s.isExited() {
		s.log.Debug("write to PTY", "sandbox", s.info.ID, "err", err)
	}
}

func (s *session) resize(rows, cols uint16) error {
	if s.isExited() {
		return nil
	}
	return pty.Setsize(s.proc.PTY(), &pty.Winsize{Rows: rows, Cols: cols})
}

// attachment is one WebSocket client of a session.
type attachment struct {
	queue   chan frame
	dropped chan struct{} // closed when the session dropped this client for falling behind
}

// attach serves one WebSocket client until it leaves, falls behind or the sandbox exits: first
// the scrollback, then live output; input and control frames go the other way.
func (s *session) attach(conn *websocket.Conn) {
	conn.SetReadLimit(maxMessageBytes)
	a := &attachment{queue: make(chan frame, clientQueueLen+1), dropped: make(chan struct{})}
	s.mu.Lock()
	if back := s.ring.Bytes(); len(back) > 0 {
		a.queue <- frame{data: back} // the +1 slot: the replay never counts against the client
	}
	if !s.isExited() {
		s.clients[a] = struct{}{}
		s.lastActive = time.Now()
		s.metrics.clients.Inc()
	}
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer cancel()
		s.readClient(ctx, conn, a)
	}()
	s.writeClient(ctx, conn, a)
	s.detach(a)
}

func (s *session) detach(a *attachment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[a]; ok {
		delete(s.clients, a)
		s.metrics.clients.Dec()
	}
	s.lastActive = time.Now()
}

func (s *session) readClient(ctx context.Context, conn *websocket.Conn, a *attachment) {
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageBinary {
			s.input(data)
			continue
		}
		var c wire.Control
		reply := wire.Control{Type: "pong"}
		if err := json.Unmarshal(data, &c); err != nil {
			reply = wire.Control{Type: "error", Message: "control frame is not JSON"}
		} else {
			switch c.Type {
			case "ping":
			case "resize":
				reply = wire.Control{}
				if c.Rows == 0 || c.Cols == 0 || c.Rows > maxTermSize || c.Cols > maxTermSize {
					reply = wire.Control{Type: "error", Message: fmt.Sprintf("resize needs rows and cols between 1 and %d", maxTermSize)}
				} else if err := s.resize(c.Rows, c.Cols); err != nil {
					s.log.Warn("resize PTY", "sandbox", s.info.ID, "err", err)
				}
			default:
				reply = wire.Control{Type: "error", Message: "unknown control type " + c.Type}
			}
		}
		if reply.Type != "" {
			s.send(a, reply)
		}
	}
}

// send queues a control frame for one client, dropping it like output if its queue is full.
func (s *session) send(a *attachment, c wire.Control) {
	b, _ := json.Marshal(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case a.queue <- frame{text: true, data: b}:
	default:
		s.dropLocked(a)
	}
}

func (s *session) writeClient(ctx context.Context, conn *websocket.Conn, a *attachment) {
	w := &frameWriter{conn: conn, queue: a.queue}
	for {
		// A dropped client is told so at once, not after the backlog that got it dropped.
		select {
		case <-a.dropped:
			_ = conn.Close(wire.CloseFellBehind, "client fell behind")
			return
		default:
		}
		select {
		case f := <-a.queue:
			if err := w.write(f); err != nil {
				_ = conn.CloseNow()
				return
			}
		case <-a.dropped:
			_ = conn.Close(wire.CloseFellBehind, "client fell behind")
			return
		case <-s.exited:
			for drained := false; !drained; {
				select {
				case f := <-a.queue:
					if err := w.write(f); err != nil {
						_ = conn.CloseNow()
						return
					}
				default:
					drained = true
				}
			}
			s.mu.Lock()
			code := s.exitCode
			s.mu.Unlock()
			b, _ := json.Marshal(wire.Control{Type: "exit", Code: &code})
			if err := w.write(frame{text: true, data: b}); err != nil {
				_ = conn.CloseNow()
				return
			}
			_ = conn.Close(websocket.StatusNormalClosure, "sandbox exited")
			return
		case <-ctx.Done():
			_ = conn.CloseNow()
			return
		}
	}
}

// frameWriter writes frames, coalescing queued terminal output into fewer, larger messages so
// a client that is momentarily behind catches up in few writes.
type frameWriter struct {
	conn    *websocket.Conn
	queue   chan frame
	pending *frame // a text frame taken from the queue while coalescing
}

func (w *frameWriter) write(f frame) error {
	for {
		if err := w.writeOne(f); err != nil {
			return err
		}
		if w.pending == nil {
			return nil
		}
		f, w.pending = *w.pending, nil
	}
}

func (w *frameWriter) writeOne(f frame) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if f.text {
		return w.conn.Write(ctx, websocket.MessageText, f.data)
	}
	data, copied := f.data, false
coalesce:
	for {
		select {
		case next := <-w.queue:
			if next.text || len(data)+len(next.data) > maxMessageBytes {
				w.pending = &next
				break coalesce
			}
			if !copied { // f.data is shared with the other clients: never append to it
				data, copied = append(make([]byte, 0, maxMessageBytes), data...), true
			}
			data = append(data, next.data...)
		default:
			break coalesce
		}
	}
	return w.conn.Write(ctx, websocket.MessageBinary, data)
}
