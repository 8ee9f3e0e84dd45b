//go:build !lambda.norpc

package lambdalocal

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
)

// newInvoker wraps h in aws-lambda-go's own invocation code: lambda.Function
// (the entry point of the go1.x runtime, exported for it and still part of
// the module) sets up the deadline context and the lambdacontext, calls the
// handler, and turns a returned error or a panic into the InvokeResponse_Error
// that the Lambda service reports (errorType = the Go type name of the error
// without package or pointer, errorMessage = err.Error(), plus stackTrace for
// panics). Using it, rather than a copy of its rules, keeps the error shape
// identical to AWS.
func newInvoker(h Handler) invoker {
	fn := lambda.NewFunction(h) //nolint:staticcheck // deprecated only for use outside the go1.x runtime; it is the exact invocation path we want
	return func(req *messages.InvokeRequest) *messages.InvokeResponse {
		var resp messages.InvokeResponse
		if err := fn.Invoke(req, &resp); err != nil { // never fails: errors are reported in resp.Error
			resp.Error = &messages.InvokeResponse_Error{Message: err.Error(), Type: "Runtime.Unknown"}
		}
		return &resp
	}
}
