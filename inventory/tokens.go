package inventory

import (
	"context"
	"regexp"
	"time"

	"github.com/anyops/anyops"
)

// APIToken is an API bearer token of one person: its name, its role, and the hex SHA-256 of
// the token (the token itself is shown once, when it is made, and kept nowhere).
type APIToken struct {
	Name      string    `gorm:"column:name;primaryKey" json:"name"`
	Role      string    `gorm:"column:role" json:"role"` // viewer, operator or admin (api.AccessRole)
	Digest    string    `gorm:"column:digest" json:"-"`
	CreatedBy string    `gorm:"column:created_by" json:"created_by"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// TableName is the table of APIToken.
func (APIToken) TableName() string { return "api_tokens" }

var tokenNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// ValidTokenName reports whether name can name an API token's holder: lower case, 1 to 64
// characters of letters, digits and . _ @ -, like a login or an e-mail address.
func ValidTokenName(name string) bool { return tokenNamePattern.MatchString(name) }

// CreateAPIToken records a token. A malformed name or digest is EINVALID; a name taken, or a
// digest recorded already, ECONFLICT.
func (s *Store) CreateAPIToken(ctx context.Context, t APIToken) (APIToken, error) {
	if !ValidTokenName(t.Name) {
		return APIToken{}, anyops.Errorf(anyops.EINVALID, "token name %q must match %s", t.Name, tokenNamePattern)
	}
	if err := firstError(required("token role", t.Role), required("token digest", t.Digest)); err != nil {
		return APIToken{}, err
	}
	if err := s.db.WithContext(ctx).Create(&t).Error; err != nil {
		return APIToken{}, dbError(err, "token "+quote(t.Name))
	}
	return t, nil
}

// APITokenByDigest returns the token whose SHA-256 is digest; ENOTFOUND when there is none.
func (s *Store) APITokenByDigest(ctx context.Context, digest string) (APIToken, error) {
	var t APIToken
	err := s.db.WithContext(ctx).Where("digest = ?", digest).Take(&t).Error
	return t, dbError(err, "token")
}

// ListAPITokens lists the tokens by name (without their digests).
func (s *Store) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	var out []APIToken
	if err := s.db.WithContext(ctx).Order("name").Find(&out).Error; err != nil {
		return nil, dbError(err, "list tokens")
	}
	return out, nil
}

// DeleteAPIToken revokes a person's token; ENOTFOUND when there is none of that name.
func (s *Store) DeleteAPIToken(ctx context.Context, name string) error {
	res := s.db.WithContext(ctx).Where("name = ?", name).Delete(&APIToken{})
	if res.Error != nil {
		return dbError(res.Error, "token "+quote(name))
	}
	if res.RowsAffected == 0 {
		return anyops.Errorf(anyops.ENOTFOUND, "token %q: not found", name)
	}
	return nil
}
