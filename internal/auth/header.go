package auth

import (
	"strings"

	"github.com/sluicehq/sluice/internal/domain"
)

// reasonMultipleHeaders is the AuthenticationFailed reason for a request
// with more than one Authorization header.
const reasonMultipleHeaders = "more than one Authorization header"

// AuthorizationValue is the one rule, on every path (the API Gateway
// authorizer, the api Lambda, the local HTTP server), that picks the
// credential out of a request. values are every value the request gave the
// Authorization header, under any letter case of the name. None is "" (a
// missing header, which Verify rejects). More than one value, identical or
// not, or one holding a comma (how a proxy joins repeated fields, RFC 9110
// §5.3; no bearer token, RFC 6750 §2.1 b64token, and no API key contains
// one), is an AuthenticationFailed error: which one would be meant is
// ambiguous, and two front ends choosing differently is how a check is
// bypassed.
func AuthorizationValue(values []string) (string, error) {
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1 || strings.Contains(values[0], ","):
		return "", domain.AuthenticationFailed(reasonMultipleHeaders)
	}
	return values[0], nil
}

// AuthorizationFromEvent applies AuthorizationValue to an API Gateway event's
// headers: multiValueHeaders holds every value of every header as received
// (API Gateway REST API, "multiValueHeaders"), headers only the last value of
// each; a header present in both is one header. The values of every letter
// case of the name count.
func AuthorizationFromEvent(headers map[string]string, multi map[string][]string) (string, error) {
	var values []string
	for k, vs := range multi {
		if strings.EqualFold(k, "Authorization") {
			values = append(values, vs...)
		}
	}
	if len(values) == 0 {
		for k, v := range headers {
			if strings.EqualFold(k, "Authorization") {
				values = append(values, v)
			}
		}
	}
	return AuthorizationValue(values)
}
