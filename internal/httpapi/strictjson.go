package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/domain"
)

// checkStrictJSON refuses what encoding/json would accept silently in a
// request body: invalid UTF-8 (decoded as U+FFFD, so a later check of the
// text could never fail), a key repeated in one object (the last one would
// win), and a top-level key that matches a field of v only case-insensitively
// ({"NAME": …}). v is the body's struct; its json tags are the field names.
func checkStrictJSON(body []byte, v any) error {
	if !utf8.Valid(body) {
		return domain.InvalidRequestBody("", "the body is not valid UTF-8")
	}
	fields := jsonFieldNames(v)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := walkValue(dec, 0, fields); err != nil {
		var de *domain.Error
		if errors.As(err, &de) {
			return de
		}
		return nil // malformed JSON: the decoder that follows reports it precisely
	}
	return nil
}

// walkValue reads one JSON value, checking every object it contains.
func walkValue(dec *json.Decoder, depth int, top map[string]bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			if seen[key] {
				return domain.InvalidRequestBody(truncate(key, 100), "appears more than once in one object")
			}
			seen[key] = true
			if depth == 0 && !top[key] {
				for f := range top {
					if strings.EqualFold(f, key) {
						return domain.InvalidRequestBody(truncate(key, 100), fmt.Sprintf("unknown field (field names are case-sensitive: did you mean %q?)", f))
					}
				}
			}
			if err := walkValue(dec, depth+1, nil); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	case json.Delim('['):
		for dec.More() {
			if err := walkValue(dec, depth+1, nil); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}

// jsonFieldNames lists the json names of a struct's fields.
func jsonFieldNames(v any) map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}
