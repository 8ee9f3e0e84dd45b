// Package security holds the security regression suite (security_test.go):
// one table row per attack on the API, replayed through the real handler on
// both fronts (the local net/http server, and the AWS chain of the REQUEST
// authorizer, API Gateway's gateway responses and the api Lambda adapter),
// plus the local Lambda endpoint. Every attack must be refused in the
// documented error shape ({message, error_code, details}; Lambda's own shape
// on the Lambda endpoint), never with a 5xx, and must change nothing. It has
// no code of its own; it runs in `make test`.
package security
