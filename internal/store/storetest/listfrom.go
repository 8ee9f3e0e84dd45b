package storetest

import (
	"context"

	"github.com/sluicehq/sluice/internal/domain"
)

// ListFrom serves the same lagging (or frozen) state as List, from the first
// name >= from: the reconciler's listing from its resume point is a query of
// the same eventually consistent index. The cursors themselves (strongly
// consistent items of the table) go to the wrapped store.
func (s *StaleList) ListFrom(_ context.Context, from, pageToken string, limit int) ([]domain.Pipeline, string, error) {
	return s.list(from, pageToken, limit)
}
