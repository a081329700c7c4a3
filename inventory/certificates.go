package inventory

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/anyops/anyops"
)

// CertState is where one of the platform's certificates stands.
type CertState string

const (
	CertIssuing CertState = "issuing" // key and CSR made, not issued yet
	CertActive  CertState = "active"  // the one served
	CertRetired CertState = "retired" // replaced: recorded for revocation
	CertRevoked CertState = "revoked"
)

// CertStates lists every CertState; the schema's CHECK is tested against it.
var CertStates = []CertState{CertIssuing, CertActive, CertRetired, CertRevoked}

// Certificate is one certificate of the platform (name "platform": its own domain) with its
// key. A rotation makes a new key and CSR (issuing), gets it issued, makes it active and the
// old one retired — recorded for revocation, and revoked through ACME where the CA allows.
// The key lives in the inventory: guard the database as the secret it then is.
type Certificate struct {
	ID           int64      `gorm:"column:id;primaryKey" json:"id"`
	Name         string     `gorm:"column:name" json:"name"`
	Domain       string     `gorm:"column:domain" json:"domain"`
	State        CertState  `gorm:"column:state" json:"state"`
	RotationKey  *string    `gorm:"column:rotation_key" json:"rotation_key,omitempty"`
	KeyPEM       string     `gorm:"column:key_pem" json:"-"`
	CSRPEM       string     `gorm:"column:csr_pem" json:"csr_pem"`
	CertPEM      string     `gorm:"column:cert_pem" json:"cert_pem,omitempty"`
	Serial       string     `gorm:"column:serial" json:"serial,omitempty"`
	NotAfter     *time.Time `gorm:"column:not_after" json:"not_after,omitempty"`
	ReplacedBy   *int64     `gorm:"column:replaced_by" json:"replaced_by,omitempty"`
	RevokeReason string     `gorm:"column:revoke_reason" json:"revoke_reason,omitempty"`
	RevokedAt    *time.Time `gorm:"column:revoked_at" json:"revoked_at,omitempty"`
	CreatedAt    time.Time  `gorm:"column:created_at" json:"created_at"`
	UpdatedAt    time.Time  `gorm:"column:updated_at" json:"updated_at"`
}

// ACMEChallenge is a pending HTTP-01 challenge: the API answers
// /.well-known/acme-challenge/{token} with KeyAuth while it exists.
type ACMEChallenge struct {
	Token     string    `gorm:"column:token;primaryKey"`
	KeyAuth   string    `gorm:"column:key_auth"`
	Domain    string    `gorm:"column:domain"`
	CreatedAt time.Time `gorm:"column:created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at"`
}

func (Certificate) TableName() string   { return "certificates" }
func (ACMEChallenge) TableName() string { return "acme_challenges" }

// BeginRotation records the new key and CSR of the rotation named key, or returns the one an
// earlier attempt recorded (so a retry never makes a second key).
func (s *Store) BeginRotation(ctx context.Context, c Certificate, key string) (Certificate, error) {
	if err := firstError(required("certificate name", c.Name), required("domain", c.Domain), required("rotation key", key),
		required("key", c.KeyPEM), required("csr", c.CSRPEM)); err != nil {
		return Certificate{}, err
	}
	if got, err := s.rotation(ctx, key); err == nil {
		return got, nil
	} else if anyops.ErrorCode(err) != anyops.ENOTFOUND {
		return Certificate{}, err
	}
	c.ID, c.State, c.RotationKey = 0, CertIssuing, &key
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "rotation_key"}}, DoNothing: true}).Create(&c).Error
	if err != nil {
		return Certificate{}, dbError(err, "begin rotation "+quote(key))
	}
	return s.rotation(ctx, key)
}

func (s *Store) rotation(ctx context.Context, key string) (Certificate, error) {
	var c Certificate
	return c, dbError(s.db.WithContext(ctx).Where("rotation_key = ?", key).Take(&c).Error, "rotation "+quote(key))
}

// ActiveCertificate returns the certificate served under name.
func (s *Store) ActiveCertificate(ctx context.Context, name string) (Certificate, error) {
	var c Certificate
	return c, dbError(s.db.WithContext(ctx).Where("name = ? AND state = ?", name, CertActive).Take(&c).Error, "active certificate "+quote(name))
}

// GetCertificate returns a certificate by id.
func (s *Store) GetCertificate(ctx context.Context, id int64) (Certificate, error) {
	var c Certificate
	return c, dbError(s.db.WithContext(ctx).Where("id = ?", id).Take(&c).Error, "certificate")
}

// ListCertificates lists the certificates of name, newest first.
func (s *Store) ListCertificates(ctx context.Context, name string) ([]Certificate, error) {
	var out []Certificate
	return out, dbError(s.db.WithContext(ctx).Where("name = ?", name).Order("id DESC").Find(&out).Error, "list certificates")
}

// CompleteRotation makes the issued certificate active and the one it replaces retired
// (recorded for revocation), in one transaction; the same call again changes nothing. It
// returns the retired one, nil when there was none.
func (s *Store) CompleteRotation(ctx context.Context, id int64, certPEM, serial string, notAfter time.Time) (*Certificate, error) {
	var retired *Certificate
	err := s.InTx(ctx, func(tx *Store) error {
		var c Certificate
		if err := tx.db.WithContext(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&c).Error; err != nil {
			return err
		}
		var old Certificate
		if c.State == CertActive { // done before: this retry finds what it retired
			err := tx.db.WithContext(ctx).Where("replaced_by = ?", id).Take(&old).Error
			if err == nil {
				retired = &old
			} else if err != gorm.ErrRecordNotFound {
				return err
			}
			return nil
		}
		// Retire the old one first: at most one is active (certificates_one_active).
		err := tx.db.WithContext(ctx).Where("name = ? AND state = ?", c.Name, CertActive).Take(&old).Error
		switch {
		case err == nil:
			if err := tx.db.WithContext(ctx).Model(&old).Updates(map[string]any{"state": CertRetired, "replaced_by": id, "updated_at": now()}).Error; err != nil {
				return err
			}
			old.State, old.ReplacedBy = CertRetired, &id
			retired = &old
		case err != gorm.ErrRecordNotFound:
			return err
		}
		return tx.db.WithContext(ctx).Model(&c).Updates(map[string]any{"state": CertActive, "cert_pem": certPEM, "serial": serial,
			"not_after": normTime(notAfter), "updated_at": now()}).Error
	})
	return retired, dbError(err, "complete rotation")
}

// MarkRevoked records that a retired certificate was revoked.
func (s *Store) MarkRevoked(ctx context.Context, id int64, reason string, at time.Time) error {
	return dbError(s.db.WithContext(ctx).Model(&Certificate{}).Where("id = ? AND state = ?", id, CertRetired).
		Updates(map[string]any{"state": CertRevoked, "revoke_reason": reason, "revoked_at": normTime(at), "updated_at": now()}).Error, "mark revoked")
}

// PutChallenge records an HTTP-01 challenge to answer.
func (s *Store) PutChallenge(ctx context.Context, token, keyAuth, domain string) error {
	c := ACMEChallenge{Token: token, KeyAuth: keyAuth, Domain: domain}
	return dbError(s.db.WithContext(ctx).Clauses(clause.OnConflict{UpdateAll: true}).Create(&c).Error, "put challenge")
}

// GetChallenge returns the key authorization of a pending challenge.
func (s *Store) GetChallenge(ctx context.Context, token string) (ACMEChallenge, error) {
	var c ACMEChallenge
	return c, dbError(s.db.WithContext(ctx).Where("token = ?", token).Take(&c).Error, "challenge")
}

// DeleteChallenge removes a challenge once answered.
func (s *Store) DeleteChallenge(ctx context.Context, token string) error {
	return dbError(s.db.WithContext(ctx).Where("token = ?", token).Delete(&ACMEChallenge{}).Error, "delete challenge")
}
