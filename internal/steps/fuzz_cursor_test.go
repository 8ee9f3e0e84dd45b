package steps

import (
	"context"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// The workflow steps never list or touch the reconciler's cursors.

func (m *memStore) ListFrom(context.Context, string, string, int) ([]domain.Pipeline, string, error) {
	return nil, "", errNotInMemStore
}

func (m *memStore) ReconcilerCursor(context.Context, store.CursorKey) (store.Cursor, error) {
	return store.Cursor{}, errNotInMemStore
}

func (m *memStore) SetReconcilerCursor(context.Context, store.CursorKey, string) error {
	return errNotInMemStore
}

func (m *memStore) ClearReconcilerCursor(context.Context, store.CursorKey, string) (bool, error) {
	return false, errNotInMemStore
}
