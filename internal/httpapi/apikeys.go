package httpapi

// API keys: Feldera's /v0/api_keys endpoints.
//
//   - GET    /v0/api_keys                 → 200 [ApiKeyDescr], name order
//   - POST   /v0/api_keys {name, role?}   → 201 {id, name, api_key, role}
//   - GET    /v0/api_keys/{api_key_name}  → 200 [ApiKeyDescr] (an array of one, as Feldera answers)
//   - DELETE /v0/api_keys/{api_key_name}  → 200, empty body
//
// Decisions:
//   - Every one of them needs the write role, GET included (as in Feldera,
//     whose document says "Required role: write or higher" on all four): the
//     key inventory is security-relevant, and a read key must not be able
//     to learn which keys exist, let alone make one.
//   - ApiKeyDescr is a superset of both Feldera shapes: {id, name, role}
//     (today) and {id, name, scopes} (0.148: read → ["Read"], write →
//     ["Read", "Write"]); id is store.APIKey.UUID.
//   - POST accepts role "read" or "write" (Feldera's MintableKeyRole and
//     Sluice's roles are the same words), or null/absent for write: a
//     Feldera 0.148 client sends no role and expects a key with full access.
//     "admin" and "owner" (Feldera's other roles) are never issuable.
//   - Names follow the pipeline name rule (domain.ValidateName); a GET or
//     DELETE of a name that breaks it is UnknownApiKey (no key can have it).
//   - The secret is in the 201 body only; it is never logged or stored
//     (only its SHA-256 is). Every answer carries Cache-Control: no-store.

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/store"
)

// keyNameParam is the path parameter of the per-key route, as in Feldera.
const keyNameParam = "{api_key_name}"

// API key route templates.
const (
	routeAPIKeys = "/v0/api_keys"
	routeAPIKey  = "/v0/api_keys/{api_key_name}"
)

func (h *Handler) apiKeyRoutes() []*route {
	return []*route{
		{template: routeAPIKeys, endpoints: map[string]endpoint{
			http.MethodGet:  {handle: h.listAPIKeys, query: []string{"limit", "page_token"}, role: store.RoleWrite},
			http.MethodPost: {handle: h.createAPIKey, body: true, role: store.RoleWrite}}},
		{template: routeAPIKey, endpoints: map[string]endpoint{
			http.MethodGet:    {handle: h.getAPIKey, role: store.RoleWrite},
			http.MethodDelete: {handle: h.deleteAPIKey, role: store.RoleWrite}}},
	}
}

// apiKeyDescr is Feldera's ApiKeyDescr, in both of its shapes at once.
type apiKeyDescr struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Scopes []string `json:"scopes"`
}

func descrOf(k store.APIKey) apiKeyDescr {
	scopes := []string{"Read"}
	if k.Role == store.RoleWrite {
		scopes = append(scopes, "Write")
	}
	return apiKeyDescr{ID: k.UUID(), Name: k.Name, Role: string(k.Role), Scopes: scopes}
}

// newAPIKeyResponse is Feldera's NewApiKeyResponse plus the role.
type newAPIKeyResponse struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	APIKey string `json:"api_key"`
	Role   string `json:"role"`
}

func noStore(r Response, err error) (Response, error) {
	if err == nil {
		if r.Header == nil {
			r.Header = http.Header{}
		}
		r.Header.Set("Cache-Control", "no-store")
	}
	return r, err
}

func (h *Handler) listAPIKeys(ctx context.Context, c *call) (Response, error) {
	limit, token, err := listPaging(c.query)
	if err != nil {
		return Response{}, err
	}
	keys, next, err := h.store.ListAPIKeys(ctx, token, limit)
	if err != nil {
		return Response{}, err
	}
	out := make([]apiKeyDescr, 0, len(keys))
	for _, k := range keys {
		out = append(out, descrOf(k))
	}
	resp, err := jsonResponse(http.StatusOK, out)
	if err == nil && next != "" {
		resp.Header.Set(NextPageHeader, next)
	}
	return noStore(resp, err)
}

func (h *Handler) getAPIKey(ctx context.Context, c *call) (Response, error) {
	k, err := h.store.GetAPIKeyByName(ctx, c.keyName)
	if err != nil {
		return Response{}, err
	}
	// An array of one: what Feldera answers (its 0.148 document says a
	// bare object, its server has always sent an array).
	return noStore(jsonResponse(http.StatusOK, []apiKeyDescr{descrOf(k)}))
}

func (h *Handler) deleteAPIKey(ctx context.Context, c *call) (Response, error) {
	k, err := h.store.DeleteAPIKey(ctx, c.keyName)
	if err != nil {
		return Response{}, err
	}
	obs.Logger(ctx).InfoContext(ctx, "API key deleted", "key_id", k.ID, "key_name", k.Name, "principal", c.principal.Kind+":"+c.principal.Subject)
	return noStore(Response{Status: http.StatusOK, Header: http.Header{}}, nil)
}

// newAPIKeyBody is Feldera's NewApiKeyRequest.
type newAPIKeyBody struct {
	Name *string `json:"name"`
	Role *string `json:"role"`
}

func decodeNewAPIKey(body []byte) (newAPIKeyBody, error) {
	return decodeStrict[newAPIKeyBody](body, "name, role")
}

// keyRole maps the body's role to a Sluice role: Feldera's MintableKeyRole
// values and Sluice's are the same words; none is write.
func keyRole(r *string) (store.Role, error) {
	if r == nil {
		return store.RoleWrite, nil
	}
	switch *r {
	case string(store.RoleRead):
		return store.RoleRead, nil
	case string(store.RoleWrite):
		return store.RoleWrite, nil
	case "admin", "owner":
		return "", domain.InvalidRequestBody("role", fmt.Sprintf("'%s' is never issuable as an API key: use read or write", *r))
	}
	return "", domain.InvalidRequestBody("role", fmt.Sprintf("must be read or write, not '%s'", truncate(*r, 100)))
}

func (h *Handler) createAPIKey(ctx context.Context, c *call) (Response, error) {
	body, err := decodeNewAPIKey(c.req.Body)
	if err != nil {
		return Response{}, err
	}
	if body.Name == nil {
		return Response{}, domain.InvalidRequestBody("name", "is required")
	}
	name := *body.Name
	if err := domain.ValidateName(name); err != nil {
		return Response{}, err
	}
	role, err := keyRole(body.Role)
	if err != nil {
		return Response{}, err
	}
	creator := c.principal.Kind + ":" + c.principal.Subject
	secret, key, err := auth.GenerateAPIKey(role, truncate("created through the API by "+creator, 200))
	if err != nil {
		return Response{}, err
	}
	key.Name = name
	if err := h.store.PutAPIKey(ctx, key); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			// 256 random bits colliding: never; not the client's doing.
			return Response{}, fmt.Errorf("storing API key %s: %w", key.ID, err)
		}
		return Response{}, err
	}
	obs.Logger(ctx).InfoContext(ctx, "API key created", "key_id", key.ID, "key_name", name, "role", string(role), "principal", creator)
	return noStore(jsonResponse(http.StatusCreated, newAPIKeyResponse{ID: key.UUID(), Name: name, APIKey: secret, Role: string(role)}))
}
