package workflow

import "testing"

func TestAWSConsoleURL(t *testing.T) {
	for _, tc := range []struct{ arn, want string }{
		{"arn:aws:states:eu-west-1:111122223333:execution:sluice-suspend:p1-abcd1234-g2-suspend",
			"https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:aws:states:eu-west-1:111122223333:execution:sluice-suspend:p1-abcd1234-g2-suspend"},
		{"arn:aws-us-gov:states:us-gov-west-1:111122223333:execution:m:e",
			"https://us-gov-west-1.console.amazonaws-us-gov.com/states/home?region=us-gov-west-1#/v2/executions/details/arn:aws-us-gov:states:us-gov-west-1:111122223333:execution:m:e"},
		{"arn:aws:states:us-east-1:1:stateMachine:m", ""},
		{"arn:aws:lambda:us-east-1:1:execution:m:e", ""},
		{"arn:aws:states:not a region:1:execution:m:e", ""},
		{"nonsense", ""},
	} {
		got, ok := AWSConsoleURL(tc.arn)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("AWSConsoleURL(%s) = %q %v, want %q", tc.arn, got, ok, tc.want)
		}
	}
}
