package api

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

// FuzzConsoleToken proves the console token parser never panics and accepts only the token
// minted for that console, unexpired.
func FuzzConsoleToken(f *testing.F) {
	cs := &consoleService{tokenKeys: [][]byte{[]byte("fuzz-key")}}
	now := time.Unix(1_800_000_000, 0)
	good := cs.consoleToken("c1", now.Add(time.Hour))
	for _, s := range []string{good, "", ".", "1.", ".AAAA", "99999999999999999999.x", "-1.AAAA", good + "x", "1800003600." + good} {
		f.Add("c1", s)
	}
	f.Fuzz(func(t *testing.T, id, tok string) {
		ok := cs.validConsoleToken(id, tok, now)
		if ok && (id != "c1" || tok != good) {
			t.Fatalf("accepted a token not minted for the console: id %q token %q", id, tok)
		}
	})
}

// FuzzClientAddr proves the client address is always the peer or a parseable address from
// X-Forwarded-For, never a panic, and the peer itself when the peer is not a trusted proxy.
func FuzzClientAddr(f *testing.F) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, s := range [][2]string{{"10.0.0.1:1", "1.2.3.4"}, {"8.8.8.8:1", "1.2.3.4"}, {"10.0.0.1:1", "1.2.3.4, 10.0.0.2"}, {"[::1]:1", ""}, {"garbage", "x, y"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := ClientAddr(r, trusted)
		peer, err := netip.ParseAddrPort(remote)
		if err != nil || trusted[0].Contains(peer.Addr().Unmap()) {
			return
		}
		if got != peer.Addr().Unmap().String() {
			t.Fatalf("untrusted peer %q with XFF %q gave %q", remote, xff, got)
		}
	})
}
