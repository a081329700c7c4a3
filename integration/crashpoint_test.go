package integration

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"
)

// crashPoints wraps cloudsim's handler so a test can kill a worker at the worst moment: the
// cloud has carried out a call (an instance launched, a volume created, a script run on a
// host) but the activity never hears back, so Temporal retries it on another worker. Arm an
// EC2 action, or an SSM script by a piece of its text; the first request for it is served by
// cloudsim as usual, then its response is held, and the channel arm returned is closed. The
// held response is dropped when the caller's connection dies.
type crashPoints struct {
	next    http.Handler
	mu      sync.Mutex
	armed   map[string]chan struct{}
	held    map[string]string         // action -> ClientToken (or script text) of the held request
	calls   map[string]map[string]int // action -> ClientToken (or script text) -> requests seen
	scripts []string                  // the script texts armed, so later sends count under them
	release chan struct{}
	once    sync.Once
}

// sendCommand is how crashPoints names SSM's SendCommand among the EC2 actions.
const sendCommand = "SendCommand"

func newCrashPoints(next http.Handler) *crashPoints {
	return &crashPoints{next: next, armed: map[string]chan struct{}{}, held: map[string]string{},
		calls: map[string]map[string]int{}, release: make(chan struct{})}
}

// arm holds the response of the next request for the EC2 action.
func (c *crashPoints) arm(action string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	hit := make(chan struct{})
	c.armed[action] = hit
	return hit
}

// armScript holds the response of the next SSM SendCommand whose script contains text: the
// host runs the script, the activity never learns its command id.
func (c *crashPoints) armScript(text string) <-chan struct{} {
	c.mu.Lock()
	c.scripts = append(c.scripts, text)
	c.mu.Unlock()
	return c.arm(sendCommand)
}

// heldCalls returns how many requests carried the ClientToken of the held request of action:
// 2 or more means the call whose answer was lost was made again.
func (c *crashPoints) heldCalls(action string) (token string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	token = c.held[action]
	return token, c.calls[action][token]
}

// releaseAll lets held requests return, so the server can shut down; again is a no-op.
func (c *crashPoints) releaseAll() { c.once.Do(func() { close(c.release) }) }

func (c *crashPoints) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	action, token := "", ""
	switch r.Header.Get("X-Amz-Target") {
	case "":
		if q, err := url.ParseQuery(string(body)); err == nil {
			action, token = q.Get("Action"), q.Get("ClientToken")
		}
	case "AmazonSSM.SendCommand":
		action = sendCommand
	}
	c.mu.Lock()
	if action == sendCommand {
		for _, text := range c.scripts {
			if bytes.Contains(body, []byte(text)) {
				token = text
			}
		}
	}
	if c.calls[action] == nil {
		c.calls[action] = map[string]int{}
	}
	c.calls[action][token]++
	hit, armed := c.armed[action]
	armed = armed && (action != sendCommand || token != "")
	if armed {
		delete(c.armed, action)
		c.held[action] = token
	}
	c.mu.Unlock()
	if !armed {
		c.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	c.next.ServeHTTP(rec, r)
	close(hit)
	holdThenReply(w, r, rec, c.release)
}

// holdThenReply holds a crash point's recorded answer until the caller's connection dies
// (the worker was killed: the answer is lost with it), the crash points are released, or a
// minute passes, and then replies with it.
func holdThenReply(w http.ResponseWriter, r *http.Request, rec *httptest.ResponseRecorder, release <-chan struct{}) {
	select {
	case <-r.Context().Done():
		return
	case <-release:
	case <-time.After(time.Minute):
	}
	reply(w, rec)
}

// reply writes a recorded answer.
func reply(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}
