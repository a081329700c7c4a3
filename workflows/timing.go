package workflows

import "time"

// orDefault is how a timing policy fills a field its input left unset: v, or def when v is
// zero (or negative, which validation refuses before).
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
