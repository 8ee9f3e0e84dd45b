// Package openapi embeds the OpenAPI 3 description of Sluice's API
// (openapi.yaml beside this file) and serves it as JSON, converted once.
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var document []byte

// YAML returns the document as written.
func YAML() []byte { return append([]byte(nil), document...) }

var converted struct {
	once sync.Once
	json []byte
	err  error
}

// JSON returns the document converted to JSON (computed once; callers must
// not modify the slice).
func JSON() ([]byte, error) {
	converted.once.Do(func() {
		converted.json, converted.err = toJSON(document)
	})
	return converted.json, converted.err
}

func toJSON(doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("openapi: parsing the YAML document: %w", err)
	}
	v, err := jsonable(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// jsonable turns YAML's generic values into JSON's: mapping keys must be
// strings (a YAML key such as 200 becomes "200").
func jsonable(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return v, nil
}
