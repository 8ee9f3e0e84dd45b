// Package lambdasmoke holds the smoke test of the Lambda binaries: every
// function under functions/ is built as a `bootstrap` for this machine and run
// under the AWS Lambda Runtime Interface Emulator (RIE), which is the
// Runtime API that Lambda's provided.al2023 runtime offers a custom runtime,
// with the same init/invoke lifecycle and REPORT lines, without Docker or an
// AWS account.
//
// The RIE is the Go module github.com/aws/aws-lambda-runtime-interface-emulator,
// a tool dependency of this module (the `tool` directive in go.mod pins its
// version); the test builds its cmd/aws-lambda-rie with `go build` and starts
// one emulator per function:
//
//	aws-lambda-rie --runtime-api-address 127.0.0.1:<p1> \
//	    --runtime-interface-emulator-address 127.0.0.1:<p2> <bootstrap>
//
// It then POSTs the function's functions/<name>/event.json (and a few inline
// events) to http://127.0.0.1:<p2>/2015-03-31/functions/function/invocations
// and checks that the binary boots, takes the event and answers in its
// contract's shape. There is no AWS behind it: every AWS endpoint points at a
// closed local port, so a function that needs DynamoDB fails fast and must
// say so properly (api: a 503 in SPEC §5's shape; authorizer: a function
// error, or "Unauthorized" for a bad credential; steps: a named error type
// the ASL routes on; reconciler: a report or an error).
//
// It also builds every function for linux/arm64 with the Makefile's
// build-<LogicalId> target (the flags sam build uses) and fails if a
// bootstrap exceeds MaxBootstrapBytes, and it logs each function's init
// duration (the RIE's INIT REPORT) and binary sizes.
package lambdasmoke
