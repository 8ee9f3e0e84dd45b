package httpapi

import (
	"context"
	"errors"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// The API never lists from a name or touches the reconciler's cursors; the
// fuzz target's memStore refuses them.
var errCursorsNotInMemStore = errors.New("memStore: the reconciler's cursors are not served")

func (m *memStore) ListFrom(context.Context, string, string, int) ([]domain.Pipeline, string, error) {
	return nil, "", errCursorsNotInMemStore
}

func (m *memStore) ReconcilerCursor(context.Context, store.CursorKey) (store.Cursor, error) {
	return store.Cursor{}, errCursorsNotInMemStore
}

func (m *memStore) SetReconcilerCursor(context.Context, store.CursorKey, string) error {
	return errCursorsNotInMemStore
}

func (m *memStore) ClearReconcilerCursor(context.Context, store.CursorKey, string) (bool, error) {
	return false, errCursorsNotInMemStore
}
