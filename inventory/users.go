package inventory

import (
	"context"
	"regexp"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/anyops/anyops"
)

// FirstUID is the first Unix uid handed to a user: the start of the sandbox range, above
// every uid of the hosts and images.
const FirstUID = anyops.FirstSandboxID

// uidCounter names the counters row that hands out uids (seeded in 0001_init.sql).
const uidCounter = "user_uid"

var userNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// ValidUserName reports whether name can be a user name: a Unix login name, lower case,
// 1 to 32 characters, starting with a letter.
func ValidUserName(name string) bool { return userNamePattern.MatchString(name) }

// CreateUser creates a user with the next free uid, pinned to the default image (none when
// there is no default: their consoles then get the console host's own default). A malformed
// name or plan is EINVALID; a taken name ECONFLICT.
func (s *Store) CreateUser(ctx context.Context, name string, plan anyops.Plan, anonymous bool) (User, error) {
	if !ValidUserName(name) {
		return User{}, anyops.Errorf(anyops.EINVALID, "user name %q must match %s", name, userNamePattern)
	}
	if _, err := anyops.Parse("plan", string(plan), anyops.Plans); err != nil {
		return User{}, err
	}
	u := User{Name: name, Plan: plan, Anonymous: anonymous}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&User{}).Where("name = ?", name).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return anyops.Errorf(anyops.ECONFLICT, "user %q already exists", name)
		}
		// The update takes the counter's row lock on PostgreSQL, so concurrent creations
		// queue here and each reads the value it wrote.
		if err := tx.Exec("UPDATE counters SET value = value + 1, updated_at = ? WHERE name = ?", now(), uidCounter).Error; err != nil {
			return err
		}
		if err := tx.Raw("SELECT value FROM counters WHERE name = ?", uidCounter).Scan(&u.UID).Error; err != nil {
			return err
		}
		img, err := defaultImage(tx)
		switch {
		case err == nil:
			u.ImageID, u.Image = img.ID, &img
		case anyops.ErrorCode(err) != anyops.ENOTFOUND:
			return err
		}
		return tx.Create(&u).Error
	})
	if err != nil {
		return User{}, dbError(err, "create user "+quote(name))
	}
	return u, nil
}

// GetUser returns a user with its pinned image.
func (s *Store) GetUser(ctx context.Context, name string) (User, error) {
	var u User
	db := s.db.WithContext(ctx)
	if err := db.Where("name = ?", name).Take(&u).Error; err != nil {
		return u, dbError(err, "user "+quote(name))
	}
	return u, s.fillImages(db, []*User{&u})
}

func (s *Store) fillImages(db *gorm.DB, users []*User) error {
	ids := map[int64]bool{}
	var list []int64
	for _, u := range users {
		if u.ImageID != 0 && !ids[u.ImageID] {
			ids[u.ImageID] = true
			list = append(list, u.ImageID)
		}
	}
	if len(list) == 0 {
		return nil
	}
	var imgs []Image
	if err := db.Where("id IN ?", list).Find(&imgs).Error; err != nil {
		return dbError(err, "read images of users")
	}
	byID := map[int64]Image{}
	for _, img := range imgs {
		byID[img.ID] = img
	}
	for _, u := range users {
		if img, ok := byID[u.ImageID]; ok {
			u.Image = &img
		}
	}
	return nil
}

// DeleteUser removes a user. An anonymous user's consoles and sandboxes go with it: they are
// throw-away by design. A named user keeps a history, so deleting one that still has an open
// console is ECONFLICT; its closed and lost console rows and ended sandboxes are removed.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var u User
		if err := tx.Where("name = ?", name).Take(&u).Error; err != nil {
			return err
		}
		if !u.Anonymous {
			var open int64
			if err := tx.Model(&Console{}).Where("username = ? AND state = ?", name, anyops.ConsoleOpen).Count(&open).Error; err != nil {
				return err
			}
			if open > 0 {
				return anyops.Errorf(anyops.ECONFLICT, "user %q has %d open console(s)", name, open)
			}
		}
		if err := tx.Where("username = ?", name).Delete(&Console{}).Error; err != nil {
			return err
		}
		if err := tx.Where("username = ?", name).Delete(&Sandbox{}).Error; err != nil {
			return err
		}
		return tx.Where("name = ?", name).Delete(&User{}).Error
	})
	if err != nil && isForeignKey(err) {
		return anyops.Errorf(anyops.ECONFLICT, "user %q is still referred to", name)
	}
	return dbError(err, "user "+quote(name))
}

// UserFilter selects users.
type UserFilter struct {
	Plan      anyops.Plan
	Anonymous *bool // nil: both
	Page
}

// ListUsers lists users by name, with their pinned images.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]User, string, error) {
	if err := parseFilter("plan", string(f.Plan), anyops.Plans); err != nil {
		return nil, "", err
	}
	db := s.db.WithContext(ctx)
	q := whereSet(db.Model(&User{}), "plan", string(f.Plan))
	if f.Anonymous != nil {
		q = q.Where("anonymous = ?", *f.Anonymous)
	}
	users, next, err := listPage(q, f.Page, s.key("name"), func(u User) string { return u.Name }, "users")
	if err != nil {
		return nil, "", err
	}
	ptrs := make([]*User, len(users))
	for i := range users {
		ptrs[i] = &users[i]
	}
	return users, next, s.fillImages(db, ptrs)
}

// AddImage records a new image version. A name and version already recorded is ECONFLICT.
func (s *Store) AddImage(ctx context.Context, name, version string) (Image, error) {
	if err := firstError(required("image name", name), required("image version", version)); err != nil {
		return Image{}, err
	}
	img := Image{Name: name, Version: version}
	if err := s.db.WithContext(ctx).Create(&img).Error; err != nil {
		return Image{}, dbError(err, "image "+quote(name+":"+version))
	}
	return img, nil
}

// ListImages lists images, oldest first; name "" lists every name.
func (s *Store) ListImages(ctx context.Context, name string) ([]Image, error) {
	var imgs []Image
	q := whereSet(s.db.WithContext(ctx), "name", name)
	if err := q.Order("name, created_at, id").Find(&imgs).Error; err != nil {
		return nil, dbError(err, "list images")
	}
	return imgs, nil
}

// GetImage returns an image by name and version.
func (s *Store) GetImage(ctx context.Context, name, version string) (Image, error) {
	var img Image
	err := s.db.WithContext(ctx).Where("name = ? AND version = ?", name, version).Take(&img).Error
	return img, dbError(err, "image "+quote(name+":"+version))
}

// DefaultImage returns the image new users are pinned to; ENOTFOUND when none is the default.
func (s *Store) DefaultImage(ctx context.Context) (Image, error) {
	return defaultImage(s.db.WithContext(ctx))
}

func defaultImage(db *gorm.DB) (Image, error) {
	var img Image
	err := db.Where("is_default").Take(&img).Error
	return img, dbError(err, "default image")
}

// SetDefaultImage makes a recorded image version the default: users created from now on are
// pinned to it; users pinned before keep theirs. An unknown image is ENOTFOUND.
func (s *Store) SetDefaultImage(ctx context.Context, name, version string) (Image, error) {
	var img Image
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("name = ? AND version = ?", name, version).Take(&img).Error; err != nil {
			return err
		}
		// One statement at a time keeps the unique index on the default satisfied throughout.
		if err := tx.Model(&Image{}).Where("is_default AND id <> ?", img.ID).Updates(map[string]any{"is_default": false, "updated_at": now()}).Error; err != nil {
			return err
		}
		img.Default = true
		return tx.Model(&Image{}).Where("id = ?", img.ID).Updates(map[string]any{"is_default": true, "updated_at": now()}).Error
	})
	return img, dbError(err, "image "+quote(name+":"+version))
}

// SetUserImage pins a user to an image version.
func (s *Store) SetUserImage(ctx context.Context, user, imageName, version string) (User, error) {
	img, err := s.GetImage(ctx, imageName, version)
	if err != nil {
		return User{}, err
	}
	res := s.db.WithContext(ctx).Model(&User{}).Where("name = ?", user).
		Updates(map[string]any{"image_id": img.ID, "updated_at": now()})
	if res.Error != nil {
		return User{}, dbError(res.Error, "pin image of user "+quote(user))
	}
	if res.RowsAffected == 0 {
		return User{}, anyops.Errorf(anyops.ENOTFOUND, "user %q: not found", user)
	}
	return s.GetUser(ctx, user)
}

// CreateConsole records a new console. An empty ID gets a random UUID, an empty WorkflowID
// the console's business key, an empty State "open".
func (s *Store) CreateConsole(ctx context.Context, c Console) (Console, error) {
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.WorkflowID == "" {
		c.WorkflowID = anyops.ConsoleWorkflowID(c.ID)
	}
	if c.State == "" {
		c.State = anyops.ConsoleOpen
	}
	c.ExpiresAt = normTimePtr(c.ExpiresAt)
	if err := firstError(
		required("console user", c.User),
		parseErr("console state", string(c.State), anyops.ConsoleStates),
	); err != nil {
		return Console{}, err
	}
	if err := s.db.WithContext(ctx).Create(&c).Error; err != nil {
		return Console{}, dbError(err, "create console")
	}
	return c, nil
}

// ConsoleUpdate changes the fields that are not nil.
type ConsoleUpdate struct {
	State     *anyops.ConsoleState
	Server    *string
	SandboxID *string
	ExpiresAt *time.Time
}

// UpdateConsole applies u to a console and returns the result.
func (s *Store) UpdateConsole(ctx context.Context, id string, u ConsoleUpdate) (Console, error) {
	set := map[string]any{"updated_at": now()}
	if u.State != nil {
		if err := parseErr("console state", string(*u.State), anyops.ConsoleStates); err != nil {
			return Console{}, err
		}
		set["state"] = *u.State
	}
	if u.Server != nil {
		set["server"] = nullIfEmpty(*u.Server)
	}
	if u.SandboxID != nil {
		set["sandbox_id"] = nullIfEmpty(*u.SandboxID)
	}
	if u.ExpiresAt != nil {
		set["expires_at"] = normTime(*u.ExpiresAt)
	}
	res := s.db.WithContext(ctx).Model(&Console{}).Where("id = ?", id).Updates(set)
	if res.Error != nil {
		return Console{}, dbError(res.Error, "update console "+quote(id))
	}
	if res.RowsAffected == 0 {
		return Console{}, anyops.Errorf(anyops.ENOTFOUND, "console %q: not found", id)
	}
	return s.GetConsole(ctx, id)
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// GetConsole returns a console.
func (s *Store) GetConsole(ctx context.Context, id string) (Console, error) {
	var c Console
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&c).Error
	return c, dbError(err, "console "+quote(id))
}

// ConsoleFilter selects consoles.
type ConsoleFilter struct {
	User   string
	Server string
	State  anyops.ConsoleState
	Page
}

// ListConsoles lists consoles by id.
func (s *Store) ListConsoles(ctx context.Context, f ConsoleFilter) ([]Console, string, error) {
	if err := parseFilter("console state", string(f.State), anyops.ConsoleStates); err != nil {
		return nil, "", err
	}
	q := s.db.WithContext(ctx).Model(&Console{})
	q = whereSet(q, "username", f.User)
	q = whereSet(q, "server", f.Server)
	q = whereSet(q, "state", string(f.State))
	return listPage(q, f.Page, s.key("id"), func(c Console) string { return c.ID }, "consoles")
}

// CountConsoles counts consoles in a state; "" counts all.
func (s *Store) CountConsoles(ctx context.Context, state anyops.ConsoleState) (int, error) {
	if err := parseFilter("console state", string(state), anyops.ConsoleStates); err != nil {
		return 0, err
	}
	var n int64
	q := whereSet(s.db.WithContext(ctx).Model(&Console{}), "state", string(state))
	if err := q.Count(&n).Error; err != nil {
		return 0, dbError(err, "count consoles")
	}
	return int(n), nil
}

// CreateSandbox records a sandbox started on a console host. An empty ID gets a random
// UUID, an empty State "starting".
func (s *Store) CreateSandbox(ctx context.Context, sb Sandbox) (Sandbox, error) {
	if sb.ID == "" {
		sb.ID = uuid.NewString()
	}
	if sb.State == "" {
		sb.State = anyops.SandboxStarting
	}
	sb.EndedAt = normTimePtr(sb.EndedAt)
	if err := firstError(
		required("sandbox user", sb.User),
		required("sandbox server", sb.Server),
		parseErr("sandbox state", string(sb.State), anyops.SandboxStates),
	); err != nil {
		return Sandbox{}, err
	}
	if err := s.db.WithContext(ctx).Create(&sb).Error; err != nil {
		return Sandbox{}, dbError(err, "create sandbox")
	}
	return sb, nil
}

// SetSandboxState records a sandbox's state; ended and lost sandboxes get EndedAt now.
func (s *Store) SetSandboxState(ctx context.Context, id string, state anyops.SandboxState) (Sandbox, error) {
	if err := parseErr("sandbox state", string(state), anyops.SandboxStates); err != nil {
		return Sandbox{}, err
	}
	at := now()
	set := map[string]any{"state": state, "updated_at": at}
	if state == anyops.SandboxEnded || state == anyops.SandboxLost {
		set["ended_at"] = at
	}
	res := s.db.WithContext(ctx).Model(&Sandbox{}).Where("id = ?", id).Updates(set)
	if res.Error != nil {
		return Sandbox{}, dbError(res.Error, "set state of sandbox "+quote(id))
	}
	if res.RowsAffected == 0 {
		return Sandbox{}, anyops.Errorf(anyops.ENOTFOUND, "sandbox %q: not found", id)
	}
	return s.GetSandbox(ctx, id)
}

// GetSandbox returns a sandbox.
func (s *Store) GetSandbox(ctx context.Context, id string) (Sandbox, error) {
	var sb Sandbox
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&sb).Error
	return sb, dbError(err, "sandbox "+quote(id))
}

// SandboxFilter selects sandboxes.
type SandboxFilter struct {
	User   string
	Server string
	State  anyops.SandboxState
	Page
}

// ListSandboxes lists sandboxes by id.
func (s *Store) ListSandboxes(ctx context.Context, f SandboxFilter) ([]Sandbox, string, error) {
	if err := parseFilter("sandbox state", string(f.State), anyops.SandboxStates); err != nil {
		return nil, "", err
	}
	q := s.db.WithContext(ctx).Model(&Sandbox{})
	q = whereSet(q, "username", f.User)
	q = whereSet(q, "server", f.Server)
	q = whereSet(q, "state", string(f.State))
	return listPage(q, f.Page, s.key("id"), func(sb Sandbox) string { return sb.ID }, "sandboxes")
}
