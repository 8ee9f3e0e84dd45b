package workflow

import (
	"net/url"
	"regexp"
	"strings"
)

// regionPattern is an AWS region name (us-east-1, eu-central-2, us-gov-west-1, cn-north-1).
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)

// consoleHosts maps an ARN partition to its console's host suffix.
var consoleHosts = map[string]string{
	"aws":        "console.aws.amazon.com",
	"aws-us-gov": "console.amazonaws-us-gov.com",
	"aws-cn":     "console.amazonaws.cn",
}

// AWSConsoleURL is the Step Functions console page of an execution, from
// its ARN ("arn:<partition>:states:<region>:<account>:execution:<machine>:<name>"):
// the partition picks the console, the region its host and query.
// ok is false for anything else.
func AWSConsoleURL(executionArn string) (u string, ok bool) {
	parts := strings.SplitN(executionArn, ":", 8)
	if len(parts) != 8 || parts[0] != "arn" || parts[2] != "states" || parts[5] != "execution" || parts[6] == "" || parts[7] == "" {
		return "", false
	}
	host, known := consoleHosts[parts[1]]
	region := parts[3]
	if !known || !regionPattern.MatchString(region) {
		return "", false
	}
	// The ARN goes in the fragment as the console itself writes it there.
	return "https://" + region + "." + host + "/states/home?region=" + url.QueryEscape(region) +
		"#/v2/executions/details/" + executionArn, true
}
