package main

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// TestFixtureEvent: event.json (for `sam local invoke -e`) is an API Gateway
// REST proxy event of POST /v0/pipelines/{pipeline_name}/stop?force=true with
// the authorizer's context (the httpapi tests also run it against DynamoDB
// Local).
func TestFixtureEvent(t *testing.T) {
	b, err := os.ReadFile("event.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.HTTPMethod != "POST" || ev.Resource != "/v0/pipelines/{pipeline_name}/stop" || ev.PathParameters["pipeline_name"] != "p1" ||
		ev.QueryStringParameters["force"] != "true" || ev.RequestContext.Authorizer["principal_role"] != "write" {
		t.Fatalf("fixture %+v", ev)
	}
}
