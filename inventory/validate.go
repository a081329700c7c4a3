package inventory

import (
	"regexp"
	"strconv"

	"gorm.io/gorm"

	"github.com/anyops/anyops"
)

// firstError returns the first non-nil error: validations list every rule in one place and
// report the first one broken.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// parseErr validates a required enum value.
func parseErr[T ~string](field, s string, values []T) error {
	_, err := anyops.Parse(field, s, values)
	return err
}

// matches validates an optional value against a pattern.
func matches(field, v string, re *regexp.Regexp) error {
	if v != "" && !re.MatchString(v) {
		return anyops.Errorf(anyops.EINVALID, "%s %q is malformed", field, v)
	}
	return nil
}

// whereSet adds column = value when value is set.
func whereSet(q *gorm.DB, column, value string) *gorm.DB {
	if value == "" {
		return q
	}
	return q.Where(column+" = ?", value)
}

func quote(s string) string { return strconv.Quote(s) }
