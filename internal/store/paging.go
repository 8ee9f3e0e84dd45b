package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluicehq/sluice/internal/domain"
)

// Page sizes of List and History.
const (
	// DefaultPageLimit is used when limit <= 0.
	DefaultPageLimit = 100
	// MaxPageLimit caps limit.
	MaxPageLimit = 1000
	// maxTokenLength bounds a page token before it is decoded.
	maxTokenLength = 2048
)

func pageLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageLimit
	case limit > MaxPageLimit:
		return MaxPageLimit
	}
	return limit
}

// A page token is the base64url (no padding) of a JSON object of the
// DynamoDB key of the last item of the previous page: string attributes
// only, with exactly the key attributes of the query.

func encodeToken(key map[string]string) string {
	b, _ := json.Marshal(key) // map[string]string always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken decodes a token into a start key, checking that it has exactly
// the attributes attrs and that valid accepts it. "" is the first page (nil).
func decodeToken(token string, attrs []string, valid func(map[string]string) bool) (map[string]types.AttributeValue, error) {
	if token == "" {
		return nil, nil
	}
	bad := domain.InvalidQueryParameter("page_token", token, "a page token returned with the previous page")
	if len(token) > maxTokenLength {
		return nil, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, bad
	}
	var key map[string]string
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&key); err != nil || dec.More() || len(key) != len(attrs) {
		return nil, bad
	}
	for _, a := range attrs {
		if _, ok := key[a]; !ok {
			return nil, bad
		}
	}
	if !valid(key) {
		return nil, bad
	}
	av := make(map[string]types.AttributeValue, len(key))
	for k, v := range key {
		av[k] = &types.AttributeValueMemberS{Value: v}
	}
	return av, nil
}

// keyOf extracts the string key attributes attrs of an item (for a token).
func keyOf(item map[string]types.AttributeValue, attrs []string) (map[string]string, bool) {
	key := make(map[string]string, len(attrs))
	for _, a := range attrs {
		s, ok := item[a].(*types.AttributeValueMemberS)
		if !ok {
			return nil, false
		}
		key[a] = s.Value
	}
	return key, true
}

// queryPage runs a query until it has limit items (or the end), reading one
// item more than asked so that the token is "" exactly on the last page. The
// token of a non-last page names the key of its last item.
func (d *Dynamo) queryPage(ctx context.Context, op string, in *dynamodb.QueryInput, limit int, attrs []string) ([]map[string]types.AttributeValue, string, error) {
	var items []map[string]types.AttributeValue
	for {
		in.Limit = aws.Int32(int32(limit + 1 - len(items)))
		out, err := d.client.Query(ctx, in)
		if err != nil {
			return nil, "", classify(op, err)
		}
		items = append(items, out.Items...)
		if len(items) > limit {
			items = items[:limit]
			key, ok := keyOf(items[limit-1], attrs)
			if !ok {
				return nil, "", errorf(op, "%w: item without its key attributes %v", errCorrupt, attrs)
			}
			return items, encodeToken(key), nil
		}
		if len(out.LastEvaluatedKey) == 0 {
			return items, "", nil
		}
		in.ExclusiveStartKey = maps.Clone(out.LastEvaluatedKey)
	}
}

var (
	listKeyAttrs    = sortedAttrs(attrPK, attrSK, attrGSI1PK, attrGSI1SK)
	historyKeyAttrs = sortedAttrs(attrPK, attrSK)
)

func sortedAttrs(a ...string) []string { slices.Sort(a); return a }
