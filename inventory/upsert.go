package inventory

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

var schemaCache sync.Map

// columns returns the persisted fields of a model.
func columns(db *gorm.DB, model any) ([]*schema.Field, error) {
	sch, err := schema.Parse(model, &schemaCache, db.NamingStrategy)
	if err != nil {
		return nil, err
	}
	var out []*schema.Field
	for _, f := range sch.Fields {
		if f.DBName != "" && f.DBName != "created_at" && f.DBName != "updated_at" {
			out = append(out, f)
		}
	}
	return out, nil
}

// sameValue compares two field values; times compare as instants.
func sameValue(a, b any) bool {
	switch at := a.(type) {
	case time.Time:
		bt, ok := b.(time.Time)
		return ok && at.Equal(bt)
	case *time.Time:
		bt, ok := b.(*time.Time)
		if !ok || (at == nil) != (bt == nil) {
			return false
		}
		return at == nil || at.Equal(*bt)
	}
	return reflect.DeepEqual(a, b)
}

// upsert writes row, found by its primary key column keyColumn = key, in one transaction and
// returns the columns whose values changed. A new row reports every column it sets to a
// non-zero value; an unchanged row is not written at all, so its updated_at stays put.
// row is updated to what is now stored (created_at and updated_at included).
func upsert[T any](ctx context.Context, db *gorm.DB, row *T, keyColumn string, key any, what string) ([]string, error) {
	fields, err := columns(db, row)
	if err != nil {
		return nil, err
	}
	var changed []string
	write := func(tx *gorm.DB) error {
		changed = nil
		var old T
		err := tx.Where(keyColumn+" = ?", key).Take(&old).Error
		newV := reflect.ValueOf(row).Elem()
		if errors.Is(err, gorm.ErrRecordNotFound) {
			for _, f := range fields {
				if !f.ReflectValueOf(ctx, newV).IsZero() {
					changed = append(changed, f.DBName)
				}
			}
			return tx.Create(row).Error
		}
		if err != nil {
			return err
		}
		oldV := reflect.ValueOf(&old).Elem()
		for _, f := range fields {
			// ReflectValueOf, not ValueOf: the latter wraps serialized fields.
			a := f.ReflectValueOf(ctx, oldV).Interface()
			b := f.ReflectValueOf(ctx, newV).Interface()
			if !sameValue(a, b) {
				changed = append(changed, f.DBName)
			}
		}
		if len(changed) == 0 {
			*row = old
			return nil
		}
		stamp := now()
		if f := fieldByDBName(db, row, "created_at"); f != nil {
			v, _ := f.ValueOf(ctx, oldV)
			if err := f.Set(ctx, newV, v); err != nil {
				return err
			}
		}
		if f := fieldByDBName(db, row, "updated_at"); f != nil {
			if err := f.Set(ctx, newV, stamp); err != nil {
				return err
			}
		}
		return tx.Model(row).Select(append(append([]string{}, changed...), "updated_at")).Updates(row).Error
	}
	err = db.WithContext(ctx).Transaction(write)
	if isUnique(err) {
		// Another writer created the row between our read and our insert (two syncs of one
		// new server): once more, now as an update. A real conflict fails again.
		err = db.WithContext(ctx).Transaction(write)
	}
	if err != nil {
		return nil, dbError(err, what)
	}
	return changed, nil
}

func fieldByDBName(db *gorm.DB, model any, name string) *schema.Field {
	sch, err := schema.Parse(model, &schemaCache, db.NamingStrategy)
	if err != nil {
		return nil
	}
	return sch.LookUpField(name)
}
