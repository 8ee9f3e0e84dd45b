//go:build lambda.norpc

package lambdalocal

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// newInvoker, for builds with the lambda.norpc tag (which removes
// lambda.Function from aws-lambda-go): the same steps as lambda.Function.Invoke
// and the same error rules as aws-lambda-go's lambda/errors.go
// (lambdaErrorResponse, lambdaPanicResponse), without the panic stack trace.
// TestErrorShapeMatchesRuntime checks both builds against the real runtime loop.
func newInvoker(h Handler) invoker {
	lh := lambda.NewHandler(h)
	return func(req *messages.InvokeRequest) (resp *messages.InvokeResponse) {
		resp = &messages.InvokeResponse{}
		defer func() {
			if v := recover(); v != nil {
				if ive, ok := v.(messages.InvokeResponse_Error); ok {
					resp.Error = &ive
					return
				}
				resp.Error = &messages.InvokeResponse_Error{Message: fmt.Sprintf("%v", v), Type: errorTypeName(v), ShouldExit: true}
			}
		}()
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(req.Deadline.Seconds, req.Deadline.Nanos).UTC())
		defer cancel()
		ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: req.RequestId, InvokedFunctionArn: req.InvokedFunctionArn})
		ctx = context.WithValue(ctx, "x-amzn-trace-id", req.XAmznTraceId) //nolint:staticcheck // same untyped key as aws-lambda-go
		out, err := lh.Invoke(ctx, req.Payload)
		if err != nil {
			if ive, ok := err.(messages.InvokeResponse_Error); ok {
				resp.Error = &ive
				return resp
			}
			resp.Error = &messages.InvokeResponse_Error{Message: err.Error(), Type: errorTypeName(err)}
			return resp
		}
		resp.Payload = append([]byte(nil), out...)
		return resp
	}
}

// errorTypeName is aws-lambda-go's getErrorType.
func errorTypeName(v any) string {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Ptr {
		return t.Elem().Name()
	}
	return t.Name()
}
