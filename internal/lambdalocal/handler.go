package lambdalocal

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

// Handler is a Lambda function as the local Invoke endpoint sees it: the raw
// JSON event in, the raw JSON result out. A returned error becomes a function
// error whose errorType is the error's Go type name, exactly as aws-lambda-go
// reports it in AWS (see errorResponse).
type Handler func(ctx context.Context, payload json.RawMessage) (json.RawMessage, error)

// Invoke makes a Handler an aws-lambda-go lambda.Handler, so it can be run by
// aws-lambda-go's own invocation code (and by lambda.Start, if ever needed).
func (h Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return h(ctx, payload)
}

// Typed adapts a typed handler, the shape the functions/ packages pass to
// lambda.Start, into a Handler. JSON decoding of the event and encoding of the
// result are done by aws-lambda-go itself (lambda.NewHandler), so they behave
// byte for byte as in AWS: encoding/json decoding without
// DisallowUnknownFields, encoding without HTML escaping and without the
// trailing newline.
func Typed[In, Out any](fn func(context.Context, In) (Out, error)) Handler {
	return FromLambda(fn)
}

// FromLambda adapts any handler that lambda.Start accepts (func(), func(ctx),
// func(ctx, In) error, func(In) (Out, error), a lambda.Handler, ...) into a
// Handler. An invalid handler yields a Handler that reports the validation
// error as a function error on every call, as aws-lambda-go does.
func FromLambda(handlerFunc any) Handler {
	return func(ctx context.Context, payload json.RawMessage) (json.RawMessage, error) {
		// A fresh lambda.Handler per call: its Invoke returns the bytes of a
		// pooled output buffer that it has already put back into the
		// handler's pool, which concurrent calls on one shared handler would
		// overwrite. (In AWS one runtime process serves one invocation at a
		// time, so aws-lambda-go gets away with it.) Building one is a
		// reflection check of microseconds.
		out, err := lambda.NewHandler(handlerFunc).Invoke(ctx, payload)
		if err != nil {
			return nil, err
		}
		return append(json.RawMessage(nil), out...), nil
	}
}
