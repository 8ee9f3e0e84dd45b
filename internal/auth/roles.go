package auth

import (
	"net/http"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// RequiredRole is the role a request method needs (SPEC §6): GET and HEAD
// need read, every other method (lifecycle actions, edits) needs write.
// Methods are matched exactly as HTTP defines them (case-sensitive), so an
// unexpected spelling falls on the safe side (write).
func RequiredRole(method string) store.Role {
	switch method {
	case http.MethodGet, http.MethodHead:
		return store.RoleRead
	default:
		return store.RoleWrite
	}
}

// Authorize checks that p holds the required role: nil, or a *domain.Error
// InsufficientPermissions (403) with details {required, actual}.
func Authorize(p Principal, required store.Role) error {
	if p.Allows(required) {
		return nil
	}
	actual := string(p.Role)
	if actual == "" {
		actual = "none"
	}
	return domain.InsufficientPermissions(string(required), actual)
}
