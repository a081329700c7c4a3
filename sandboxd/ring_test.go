package sandboxd

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestRingKeepsTheLastBytes proves the ring returns exactly the last size bytes written, for
// writes that fit, wrap, exactly fill, and overflow the buffer in one go.
func TestRingKeepsTheLastBytes(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		writes []string
		want   string
	}{
		{"empty", 4, nil, ""},
		{"fits", 8, []string{"ab", "cd"}, "abcd"},
		{"exactly full", 4, []string{"ab", "cd"}, "abcd"},
		{"wraps", 4, []string{"abc", "def"}, "cdef"},
		{"one write larger than the ring", 4, []string{"x", "abcdefgh"}, "efgh"},
		{"empty write changes nothing", 4, []string{"ab", "", "c"}, "abc"},
		{"many small wraps", 3, []string{"a", "b", "c", "d", "e"}, "cde"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing(tt.size)
			for _, w := range tt.writes {
				r.Write([]byte(w))
			}
			if got := string(r.Bytes()); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRingMatchesTail proves, on random writes, that the ring always equals the tail of
// everything written.
func TestRingMatchesTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRing(64)
	var all []byte
	for i := 0; i < 2000; i++ {
		p := make([]byte, rng.IntN(100))
		for j := range p {
			p[j] = byte(rng.IntN(256))
		}
		r.Write(p)
		all = append(all, p...)
		want := all[max(0, len(all)-64):]
		if !bytes.Equal(r.Bytes(), want) {
			t.Fatalf("after write %d: ring differs from the tail", i)
		}
	}
}
