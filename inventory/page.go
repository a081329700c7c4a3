package inventory

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/anyops/anyops"
)

// Page asks for one page of a list. Limit 0 means DefaultLimit; Cursor is the next-cursor a
// previous call returned, "" for the first page.
type Page struct {
	Limit  int    `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// cursorPrefix versions the cursor format so a later change can reject old cursors cleanly.
const cursorPrefix = "k1:"

// maxCursorKey bounds the key a cursor may carry; every key of the schema is far shorter.
const maxCursorKey = 512

// EncodeCursor makes the opaque cursor that resumes a list after key.
func EncodeCursor(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + key))
}

// DecodeCursor returns the key a cursor from EncodeCursor carries. Anything else is EINVALID:
// bad or non-canonical base64, a foreign prefix, an empty or oversized key, bytes that are not UTF-8 or that
// PostgreSQL cannot hold in text (NUL).
func DecodeCursor(cursor string) (string, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(cursor)
	if err != nil {
		return "", anyops.Errorf(anyops.EINVALID, "cursor is malformed")
	}
	key, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok || key == "" || len(key) > maxCursorKey || !utf8.ValidString(key) || strings.ContainsRune(key, 0) {
		return "", anyops.Errorf(anyops.EINVALID, "cursor is malformed")
	}
	// The decoder skips \r and \n; only the canonical spelling of a key is its cursor.
	if EncodeCursor(key) != cursor {
		return "", anyops.Errorf(anyops.EINVALID, "cursor is malformed")
	}
	return key, nil
}

// limit validates p.Limit and applies the default.
func (p Page) limit() (int, error) {
	switch {
	case p.Limit == 0:
		return DefaultLimit, nil
	case p.Limit < 0 || p.Limit > MaxLimit:
		return 0, anyops.Errorf(anyops.EINVALID, "limit %d is not between 1 and %d", p.Limit, MaxLimit)
	}
	return p.Limit, nil
}

// key returns the expression lists order and page by: the key column compared byte by byte,
// as SQLite does, so that both backends list in the same order whatever PostgreSQL's locale.
func (s *Store) key(column string) string {
	if s.driver == DriverPostgres {
		return column + ` COLLATE "C"`
	}
	return column
}

// listPage runs q ordered by the text key expression, after p's cursor, and returns one page and
// the cursor of the next ("" at the end). It asks for one row more than the page to know
// whether there is a next page without a second query.
func listPage[T any](q *gorm.DB, p Page, keyExpr string, keyOf func(T) string, what string) ([]T, string, error) {
	limit, err := p.limit()
	if err != nil {
		return nil, "", err
	}
	if p.Cursor != "" {
		after, err := DecodeCursor(p.Cursor)
		if err != nil {
			return nil, "", err
		}
		q = q.Where(keyExpr+" > ?", after)
	}
	var rows []T
	if err := q.Order(keyExpr).Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, "", dbError(err, "list "+what)
	}
	return pageResult(rows, limit, keyOf)
}

func pageResult[T any](rows []T, limit int, keyOf func(T) string) ([]T, string, error) {
	if len(rows) <= limit {
		return rows, "", nil
	}
	rows = rows[:limit]
	return rows, EncodeCursor(keyOf(rows[len(rows)-1])), nil
}

// parseFilter validates an optional enum filter value: "" means any.
func parseFilter[T ~string](field, s string, values []T) error {
	if s == "" {
		return nil
	}
	_, err := anyops.Parse(field, s, values)
	return err
}
