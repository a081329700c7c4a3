package api

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops"
)

// Console tokens: a console's own credential, an HMAC of its id and expiry under a key derived
// from the sandboxd key, so any API replica checks it without state; authorizeConsole lets it
// or a staff token through.

// consoleToken is "<expiry unix>.<HMAC of id and expiry>": the console's credential, checkable
// by any API replica without state.
func (cs *consoleService) consoleToken(id string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return e + "." + base64.RawURLEncoding.EncodeToString(consoleMAC(cs.tokenKeys[0], id, e))
}

// consoleTokenKey is the console token key of a sandboxd key: derived, so every API replica
// with the same sandboxd key agrees on it, and a console token is never a sandboxd token.
func consoleTokenKey(k ed25519.PrivateKey) []byte {
	mac := hmac.New(sha256.New, k.Seed())
	mac.Write([]byte("anyops console token key v1"))
	return mac.Sum(nil)
}

func consoleMAC(key []byte, id, exp string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "\x00" + exp))
	return mac.Sum(nil)
}

func (cs *consoleService) validConsoleToken(id, tok string, now time.Time) bool {
	e, sig, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > 200 {
		return false
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil || now.Unix() >= exp {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	for _, key := range cs.tokenKeys {
		if hmac.Equal(got, consoleMAC(key, id, e)) {
			return true
		}
	}
	return false
}

// authorizeConsole lets through the console's own token (Bearer or ?token=) or a staff token
// with role need. It reports whether the caller holds the console token.
func (cs *consoleService) authorizeConsole(c *gin.Context, id string, need AccessRole) (owner bool, ok bool) {
	if err := cs.ready(); err != nil {
		WriteError(c, err)
		return false, false
	}
	tok := c.Query("token")
	if h := c.GetHeader("Authorization"); tok == "" && strings.HasPrefix(h, "Bearer ") {
		tok = strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
	}
	if tok != "" && cs.validConsoleToken(id, tok, time.Now()) {
		return true, true
	}
	if c.GetHeader("Authorization") == "" {
		WriteError(c, anyops.Errorf(anyops.EUNAUTHORIZED, "send the console token (Bearer or ?token=) or a staff token"))
		return false, false
	}
	cs.server.deps.Auth.Require(need)(c)
	return false, !c.IsAborted()
}
