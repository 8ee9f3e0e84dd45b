// Package e2e holds the end-to-end test of the local stack: it builds
// ./infra/localstack and starts it the way `make run` does (the same binary
// and flags; free ports, a temporary data dir, SLUICE_API_KEY set), follows
// the README walkthrough (the README walkthrough) literally through
// HTTP, validating every answer against the OpenAPI document, runs the AWS CLI
// inspection commands against the stack's DynamoDB and Step Functions
// endpoints, drives the same flow through the `sluice` CLI binary, and finally
// stops the stack with SIGTERM and checks that no process of it is left.
package e2e
