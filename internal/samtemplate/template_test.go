package samtemplate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/compute/ecsfargate"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/httpapi"
	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/reconciler"
	"github.com/sluicehq/sluice/internal/steps"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
)

// The Lambda functions of the application and their packages.
var wantFunctions = map[string]string{
	"ApiFunction":        "api",
	"AuthorizerFunction": "authorizer",
	"StepsFunction":      "steps",
	"ReconcilerFunction": "reconciler",
}

func TestTemplateParses(t *testing.T) {
	tp := loadTemplate(t)
	if tp.gf.Transform == nil || tp.gf.Transform.String == nil || *tp.gf.Transform.String != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform is not AWS::Serverless-2016-10-31")
	}
	fns := tp.gf.GetAllServerlessFunctionResources()
	var ids []string
	for id := range fns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var want []string
	for id := range wantFunctions {
		want = append(want, id)
	}
	sort.Strings(want)
	if !slices.Equal(ids, want) {
		t.Errorf("functions %v, want %v", ids, want)
	}
	if n := len(tp.gf.GetAllServerlessStateMachineResources()); n != 4 {
		t.Errorf("%d state machines, want 4", n)
	}
	if n := len(tp.gf.GetAllServerlessApiResources()); n != 1 {
		t.Errorf("%d APIs, want 1", n)
	}
	// The table keeps the schema the local stack reads (internal/dynamolocal).
	if _, err := dynamolocal.TableFromTemplate(filepath.Join(repoRoot(t), "template.yaml"), dynamolocal.PipelinesTableLogicalID, "t"); err != nil {
		t.Errorf("PipelinesTable is no longer readable by dynamolocal: %v", err)
	}
	table := tp.props(dynamolocal.PipelinesTableLogicalID)
	if table["BillingMode"] != "PAY_PER_REQUEST" ||
		asMap(table["PointInTimeRecoverySpecification"])["PointInTimeRecoveryEnabled"] != true ||
		asMap(table["SSESpecification"])["SSEEnabled"] != true ||
		ref(table["DeletionProtectionEnabled"]) != "TableDeletionProtection" {
		t.Errorf("PipelinesTable lost on-demand billing, PITR, SSE or its deletion protection parameter: %v", table)
	}
}

// Every function is built and configured as AWS runs it.
func TestFunctionsRuntimeAndLogging(t *testing.T) {
	tp := loadTemplate(t)
	longestTask := longestTaskTimeout(t)
	for id, fn := range tp.gf.GetAllServerlessFunctionResources() {
		t.Run(id, func(t *testing.T) {
			p := tp.functionProps(id)
			check := func(name string, got, want any) {
				t.Helper()
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			check("Runtime", p["Runtime"], "provided.al2023")
			check("Architectures", p["Architectures"], []any{"arm64"})
			check("Handler", p["Handler"], "bootstrap")
			check("CodeUri", p["CodeUri"], ".")
			check("Tracing", p["Tracing"], "Active")
			check("Metadata.BuildMethod", fn.AWSCloudFormationMetadata["BuildMethod"], "makefile")
			if fn.PackageType != nil && *fn.PackageType != "Zip" {
				t.Errorf("PackageType %s", *fn.PackageType)
			}

			lc := asMap(p["LoggingConfig"])
			check("LoggingConfig.LogFormat", lc["LogFormat"], "JSON")
			if lc["ApplicationLogLevel"] == nil || lc["SystemLogLevel"] == nil {
				t.Errorf("LoggingConfig lacks ApplicationLogLevel or SystemLogLevel: %v", lc)
			}
			if ref(lc["ApplicationLogLevel"]) == "ApplicationLogLevel" {
				// EMF metric lines are INFO: a higher level would drop them.
				allowed := asSlice(asMap(asMap(tp.raw["Parameters"])["ApplicationLogLevel"])["AllowedValues"])
				for _, v := range allowed {
					if v != "DEBUG" && v != "INFO" {
						t.Errorf("ApplicationLogLevel allows %v, which would filter out the INFO metric lines", v)
					}
				}
			}
			if lg := ref(lc["LogGroup"]); lg == "" || tp.resources()[lg]["Type"] != "AWS::Logs::LogGroup" {
				t.Errorf("LoggingConfig.LogGroup %v is not a log group of the stack (retention)", lc["LogGroup"])
			} else if ref(tp.props(lg)["RetentionInDays"]) != "LogRetentionDays" {
				t.Errorf("log group %s has no RetentionInDays: !Ref LogRetentionDays", lg)
			}

			timeout, ok1 := intValue(p["Timeout"])
			memory, ok2 := intValue(p["MemorySize"])
			if !ok1 || !ok2 {
				t.Fatalf("Timeout %v and MemorySize %v must be literal integers", p["Timeout"], p["MemorySize"])
			}
			if timeout < 1 || timeout > 900 || memory < 128 || memory > 10240 {
				t.Errorf("Timeout %d / MemorySize %d out of Lambda's range", timeout, memory)
			}
			switch id {
			case "ApiFunction":
				// API Gateway's REST integration timeout is 29 s; the forwarded
				// /checkpoint is bounded at 25 s by default (functions/api).
				if timeout > 29 || timeout <= 25 {
					t.Errorf("ApiFunction Timeout %d: want 26..29 s (above the 25 s checkpoint bound, within API Gateway's 29 s)", timeout)
				}
			case "AuthorizerFunction":
				if timeout > 29 {
					t.Errorf("AuthorizerFunction Timeout %d exceeds API Gateway's 29 s", timeout)
				}
			case "StepsFunction":
				if timeout < longestTask {
					t.Errorf("StepsFunction Timeout %d is below the longest Task TimeoutSeconds (%d) in statemachine/", timeout, longestTask)
				}
			case "ReconcilerFunction":
				if timeout >= 60 {
					t.Errorf("ReconcilerFunction Timeout %d: a pass must end before the next minute's", timeout)
				}
			}

			// VPC attachment is optional (condition) for the functions that call runtimes.
			vpc := asMap(p["VpcConfig"])
			if id == "AuthorizerFunction" {
				if vpc != nil {
					t.Errorf("the authorizer needs no VPC: %v", vpc)
				}
			} else if cond := asSlice(vpc["Fn::If"]); len(cond) != 3 || cond[0] != "AttachLambdasToVpc" || ref(cond[2]) != "AWS::NoValue" {
				t.Errorf("VpcConfig = %v, want !If [AttachLambdasToVpc, {…}, !Ref AWS::NoValue]", vpc)
			}
		})
	}
}

// longestTaskTimeout is the largest TimeoutSeconds of any Task state in
// statemachine/*.asl.json.
func longestTaskTimeout(t *testing.T) int {
	longest := 0
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["Type"] == "Task" {
				if n, ok := x["TimeoutSeconds"].(float64); ok && int(n) > longest {
					longest = int(n)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	for _, f := range aslFiles(t) {
		walk(readJSON(t, f))
	}
	if longest == 0 {
		t.Fatal("no Task TimeoutSeconds found in statemachine/")
	}
	return longest
}

func aslFiles(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "statemachine", "*.asl.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no statemachine/*.asl.json: %v", err)
	}
	return files
}

func readJSON(t *testing.T, path string) any {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// Every function has its build-<LogicalId> target, building its own package
// with the Lambda flags; every package under functions/ is a function.
func TestMakefileBuildTargets(t *testing.T) {
	tp := loadTemplate(t)
	root := repoRoot(t)
	mk := readMakefile(t)

	def := mk.vars["LAMBDA_BUILD"]
	for _, want := range []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "build", "-tags lambda.norpc", "-trimpath", `-ldflags "-s -w"`} {
		if !strings.Contains(def, want) {
			t.Errorf("LAMBDA_BUILD %q lacks %q", def, want)
		}
	}
	pkgRe := regexp.MustCompile(`\./functions/([A-Za-z0-9_-]+)\s*$`)
	used := map[string]string{}
	for id := range tp.gf.GetAllServerlessFunctionResources() {
		recipe, ok := mk.targets["build-"+id]
		if !ok {
			t.Errorf("Makefile has no target build-%s (SAM's makefile builder runs it)", id)
			continue
		}
		if len(recipe) != 1 || !strings.HasPrefix(recipe[0], "$(LAMBDA_BUILD) ") || !strings.Contains(recipe[0], "-o $(ARTIFACTS_DIR)/bootstrap ") {
			t.Errorf("build-%s recipe %q: want $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/<name>", id, recipe)
			continue
		}
		m := pkgRe.FindStringSubmatch(recipe[0])
		if m == nil {
			t.Errorf("build-%s builds no ./functions/<name> package: %q", id, recipe[0])
			continue
		}
		if want := wantFunctions[id]; m[1] != want {
			t.Errorf("build-%s builds ./functions/%s, want ./functions/%s", id, m[1], want)
		}
		used[m[1]] = id
		if _, err := os.Stat(filepath.Join(root, "functions", m[1], "main.go")); err != nil {
			t.Errorf("build-%s: functions/%s/main.go: %v", id, m[1], err)
		}
	}
	mains, _ := filepath.Glob(filepath.Join(root, "functions", "*", "main.go"))
	for _, m := range mains {
		dir := filepath.Base(filepath.Dir(m))
		if _, ok := used[dir]; !ok {
			t.Errorf("functions/%s is a main package but no function of template.yaml builds it (functions/ holds only Lambdas)", dir)
		}
	}
	lambdas := strings.Fields(mk.vars["LAMBDAS"])
	sort.Strings(lambdas)
	var dirs []string
	for d := range used {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	if !slices.Equal(lambdas, dirs) {
		t.Errorf("Makefile LAMBDAS = %v (make build), want %v", lambdas, dirs)
	}
}

type makefile struct {
	vars    map[string]string
	targets map[string][]string
}

func readMakefile(t *testing.T) makefile {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	mk := makefile{vars: map[string]string{}, targets: map[string][]string{}}
	varRe := regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*(?::=|\?=|=)\s*(.*)$`)
	targetRe := regexp.MustCompile(`^([A-Za-z0-9_./$()-]+):(?:[^=]|$)`)
	current := ""
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "\t"):
			if current != "" {
				mk.targets[current] = append(mk.targets[current], strings.TrimSpace(line))
			}
		case strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "":
		case varRe.MatchString(line):
			m := varRe.FindStringSubmatch(line)
			mk.vars[m[1]] = m[2]
			current = ""
		case targetRe.MatchString(line):
			current = targetRe.FindStringSubmatch(line)[1]
			mk.targets[current] = nil
		default:
			current = ""
		}
	}
	return mk
}

// Each function gets exactly the environment its packages read, under the
// names they export, so a renamed variable fails here and not in AWS.
func TestFunctionEnvironment(t *testing.T) {
	tp := loadTemplate(t)
	arns := []string{}
	for _, k := range domain.AllWorkflowKinds {
		arns = append(arns, workflow.EnvStateMachineARNPrefix+strings.ToUpper(string(k)))
	}
	compute := []string{
		ecsfargate.EnvCluster, ecsfargate.EnvTaskDefinition, ecsfargate.EnvContainerName,
		ecsfargate.EnvSubnets, ecsfargate.EnvSecurityGroups, ecsfargate.EnvAssignPublicIP,
		ecsfargate.EnvRuntimePort, ecsfargate.EnvStorageBucket, ecsfargate.EnvStoragePrefix,
	}
	common := []string{"SLUICE_TABLE", obs.EnvLogLevel}
	want := map[string][]string{
		"ApiFunction": concat(common, arns, []string{auth.EnvAuthDisabled,
			ecsfargate.EnvCluster, ecsfargate.EnvContainerName, ecsfargate.EnvRuntimeLogGroup, ecsfargate.EnvRuntimeLogStreamPrefix}),
		"AuthorizerFunction": concat(common, []string{auth.EnvAuthDisabled, auth.EnvJWTIssuer, auth.EnvJWTAudience, auth.EnvJWKSURL}),
		"StepsFunction":      concat(common, arns, compute, []string{steps.EnvProvisioningTimeout}),
		"ReconcilerFunction": concat(common, arns, compute, []string{metrics.EnvStuckThreshold, reconciler.EnvWorkers, reconciler.EnvShards}),
	}
	for id, names := range want {
		vars := asMap(asMap(tp.functionProps(id)["Environment"])["Variables"])
		var got []string
		for k := range vars {
			got = append(got, k)
		}
		sort.Strings(got)
		sort.Strings(names)
		if !slices.Equal(got, names) {
			t.Errorf("%s environment %v, want %v", id, got, names)
		}
	}
	api := asMap(asMap(tp.functionProps("ApiFunction")["Environment"])["Variables"])
	if ref(api[auth.EnvAuthDisabled]) != "AuthDisabled" || asMap(asMap(tp.raw["Parameters"])["AuthDisabled"])["Default"] != "false" {
		t.Errorf("%s must come from the AuthDisabled parameter, default \"false\"", auth.EnvAuthDisabled)
	}
	if ref(asMap(asMap(tp.raw["Globals"])["Function"])["Environment"].(map[string]any)["Variables"].(map[string]any)["SLUICE_TABLE"]) != "PipelinesTable" {
		t.Error("SLUICE_TABLE must be !Ref PipelinesTable")
	}
	// The steps function cannot !Ref the machines (they reference it); the
	// ARNs it builds must name the machines' Name.
	stepsEnv := asMap(asMap(tp.functionProps("StepsFunction")["Environment"])["Variables"])
	for _, k := range domain.AllWorkflowKinds {
		sub := asString(asMap(stepsEnv[workflow.EnvStateMachineARNPrefix+strings.ToUpper(string(k))])["Fn::Sub"])
		if sub != stateMachineARN(string(k)) {
			t.Errorf("StepsFunction ARN of %s = %q, want %q", k, sub, stateMachineARN(string(k)))
		}
	}
}

func stateMachineARN(kind string) string {
	return "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-" + kind
}

func executionARNs(kind string) string {
	return "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-" + kind + ":*"
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// The state machines: one per ASL file, every placeholder substituted, every
// substitution used, logging and tracing on, allowed to invoke only the steps function.
func TestStateMachines(t *testing.T) {
	tp := loadTemplate(t)
	root := repoRoot(t)
	placeholder := regexp.MustCompile(`\$\{([^}]*)\}`)
	usedFiles := map[string]string{}
	for id, sm := range tp.gf.GetAllServerlessStateMachineResources() {
		t.Run(id, func(t *testing.T) {
			if sm.DefinitionUri == nil || sm.DefinitionUri.String == nil {
				t.Fatalf("DefinitionUri is not a local file path")
			}
			uri := *sm.DefinitionUri.String
			data, err := os.ReadFile(filepath.Join(root, uri))
			if err != nil {
				t.Fatalf("DefinitionUri %s: %v", uri, err)
			}
			if other, dup := usedFiles[uri]; dup {
				t.Errorf("%s is also the definition of %s", uri, other)
			}
			usedFiles[uri] = id
			kind := strings.TrimSuffix(filepath.Base(uri), ".asl.json")

			inFile := map[string]bool{}
			for _, m := range placeholder.FindAllStringSubmatch(string(data), -1) {
				inFile[m[1]] = true
			}
			for name := range inFile {
				if _, ok := sm.DefinitionSubstitutions[name]; !ok {
					t.Errorf("${%s} in %s has no DefinitionSubstitutions entry", name, uri)
				}
			}
			for name := range sm.DefinitionSubstitutions {
				if !inFile[name] {
					t.Errorf("DefinitionSubstitutions.%s is not used in %s", name, uri)
				}
			}
			p := tp.props(id)
			if got := getAtt(asMap(p["DefinitionSubstitutions"])["StepsFunctionArn"]); got != "StepsFunction.Arn" {
				t.Errorf("StepsFunctionArn = %v, want !GetAtt StepsFunction.Arn", got)
			}
			if sm.Type == nil || *sm.Type != "STANDARD" {
				t.Errorf("Type %v, want STANDARD", sm.Type)
			}
			if got := asString(asMap(p["Name"])["Fn::Sub"]); got != "${AWS::StackName}-"+kind {
				t.Errorf("Name = %v, want !Sub \"${AWS::StackName}-%s\" (IAM statements name its executions)", p["Name"], kind)
			}
			if sm.Tracing == nil || sm.Tracing.Enabled == nil || !*sm.Tracing.Enabled {
				t.Error("Tracing.Enabled is not true")
			}
			logging := asMap(p["Logging"])
			if ref(logging["Level"]) != "StateMachineLogLevel" || logging["IncludeExecutionData"] == nil || len(asSlice(logging["Destinations"])) != 1 {
				t.Errorf("Logging = %v: want Level !Ref StateMachineLogLevel, IncludeExecutionData and one log group", logging)
			}
			invokesSteps := false
			for _, pol := range asSlice(p["Policies"]) {
				if li := asMap(asMap(pol)["LambdaInvokePolicy"]); li != nil {
					if ref(li["FunctionName"]) != "StepsFunction" {
						t.Errorf("LambdaInvokePolicy on %v, want the steps function", li["FunctionName"])
					}
					invokesSteps = true
				}
			}
			if !invokesSteps {
				t.Error("no LambdaInvokePolicy for the steps function")
			}
		})
	}
	for _, f := range aslFiles(t) {
		rel, _ := filepath.Rel(root, f)
		if _, ok := usedFiles[filepath.ToSlash(rel)]; !ok {
			t.Errorf("%s is the definition of no state machine", rel)
		}
	}
}

// Routes: exactly the routes of internal/httpapi, one event per method, the
// public ones without the authorizer.
func TestRoutesMatchHandler(t *testing.T) {
	tp := loadTemplate(t)
	h, err := httpapi.New(httpapi.Config{Store: struct{ store.Store }{}, Starter: struct{ workflow.Starter }{}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for path, methods := range h.Routes() {
		for _, m := range methods {
			want[m+" "+path] = true
		}
	}
	public := map[string]bool{"GET /healthz": true, "GET /v0/openapi.json": true}
	got := map[string]bool{}
	for name, ev := range asMap(tp.props("ApiFunction")["Events"]) {
		e := asMap(ev)
		if e["Type"] != "Api" {
			t.Errorf("event %s of type %v", name, e["Type"])
			continue
		}
		p := asMap(e["Properties"])
		if ref(p["RestApiId"]) != "SluiceApi" {
			t.Errorf("event %s is not on SluiceApi: %v", name, p["RestApiId"])
		}
		route := fmt.Sprintf("%v %v", p["Method"], p["Path"])
		if got[route] {
			t.Errorf("route %s twice", route)
		}
		got[route] = true
		authorizer := asMap(p["Auth"])["Authorizer"]
		if public[route] && authorizer != "NONE" {
			t.Errorf("%s is public (no auth, SPEC §4), but its Auth.Authorizer is %v", route, authorizer)
		}
		if !public[route] && authorizer != nil {
			t.Errorf("%s must use the default authorizer, has %v", route, authorizer)
		}
	}
	for r := range want {
		if !got[r] {
			t.Errorf("the handler serves %s, the template has no event for it", r)
		}
	}
	for r := range got {
		if !want[r] {
			t.Errorf("the template routes %s, which the handler does not serve", r)
		}
	}
	for r := range public {
		if !want[r] {
			t.Errorf("public route %s is not served by the handler", r)
		}
	}
}

// The REST API: tracing, JSON access logs, throttling, the REQUEST
// authorizer, and every error API Gateway answers itself in SPEC §5's shape.
func TestAPI(t *testing.T) {
	tp := loadTemplate(t)
	api := tp.props("SluiceApi")
	if api["TracingEnabled"] != true {
		t.Error("TracingEnabled is not true")
	}
	if ref(api["StageName"]) != "StageName" {
		t.Errorf("StageName = %v, want !Ref StageName", api["StageName"])
	}

	als := asMap(api["AccessLogSetting"])
	if lg := getAtt(als["DestinationArn"]); !strings.HasSuffix(lg, ".Arn") || tp.resources()[strings.TrimSuffix(lg, ".Arn")]["Type"] != "AWS::Logs::LogGroup" {
		t.Errorf("AccessLogSetting.DestinationArn %v is not a log group of the stack", als["DestinationArn"])
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(fillContext(asString(als["Format"]))), &entry); err != nil {
		t.Errorf("access log format is not one JSON object: %v: %s", err, als["Format"])
	}
	for _, k := range []string{"requestId", "ip", "method", "path", "status", "latency"} {
		if _, ok := entry[k]; !ok {
			t.Errorf("access log format lacks %q", k)
		}
	}

	settings := asSlice(api["MethodSettings"])
	if len(settings) != 1 {
		t.Fatalf("MethodSettings = %v", settings)
	}
	ms := asMap(settings[0])
	if ms["ResourcePath"] != "/*" || ms["HttpMethod"] != "*" ||
		ref(ms["ThrottlingRateLimit"]) != "ApiThrottlingRateLimit" || ref(ms["ThrottlingBurstLimit"]) != "ApiThrottlingBurstLimit" {
		t.Errorf("MethodSettings %v: want throttling of every method from the ApiThrottling* parameters", ms)
	}

	authCfg := asMap(api["Auth"])
	name := asString(authCfg["DefaultAuthorizer"])
	authz := asMap(asMap(authCfg["Authorizers"])[name])
	identity := asMap(authz["Identity"])
	if authz["FunctionPayloadType"] != "REQUEST" || getAtt(authz["FunctionArn"]) != "AuthorizerFunction.Arn" ||
		fmt.Sprint(identity["Headers"]) != "[Authorization]" || ref(identity["ReauthorizeEvery"]) != "AuthorizerCacheTtlSeconds" {
		t.Errorf("default authorizer %q = %v: want REQUEST, AuthorizerFunction, identity header Authorization, TTL from AuthorizerCacheTtlSeconds", name, authz)
	}
	if d := asMap(asMap(tp.raw["Parameters"])["AuthorizerCacheTtlSeconds"])["Default"]; d != 300 {
		t.Errorf("AuthorizerCacheTtlSeconds default %v, want 300", d)
	}

	responses := asMap(api["GatewayResponses"])
	catalogue := map[string]bool{}
	for _, c := range domain.AllErrorCodes() {
		catalogue[string(c)] = true
	}
	for _, rt := range []string{"UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN", "AUTHORIZER_FAILURE", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} {
		t.Run(rt, func(t *testing.T) {
			r := asMap(responses[rt])
			if r == nil {
				t.Fatal("no gateway response")
			}
			headers := asMap(asMap(r["ResponseParameters"])["Headers"])
			if headers["Content-Type"] != "'application/json'" {
				t.Errorf("Content-Type header %v, want 'application/json'", headers["Content-Type"])
			}
			tmplText := asString(asMap(r["ResponseTemplates"])["application/json"])
			// Only values that cannot break the JSON: API Gateway's escaped
			// message string and its own identifiers, never request data.
			safe := map[string]bool{"$context.requestId": true, "$context.error.messageString": true, "$context.error.responseType": true, "$context.httpMethod": true}
			for _, v := range regexp.MustCompile(`\$[A-Za-z.]+`).FindAllString(tmplText, -1) {
				if !safe[v] {
					t.Errorf("the template inserts %s, which may break its JSON or reflect request data", v)
				}
			}
			var body struct {
				Message   *string         `json:"message"`
				ErrorCode string          `json:"error_code"`
				Details   json.RawMessage `json:"details"`
			}
			dec := json.NewDecoder(strings.NewReader(fillContext(tmplText)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("template is not {message, error_code, details}: %v: %s", err, tmplText)
			}
			if body.Message == nil || *body.Message == "" || !strings.HasPrefix(strings.TrimSpace(string(body.Details)), "{") {
				t.Errorf("message or details (an object) missing: %s", tmplText)
			}
			status := asString(r["StatusCode"])
			switch {
			case rt == "DEFAULT_4XX":
				// The catch-all keeps API Gateway's own 4xx status (the
				// responses above cover every 4xx this API can produce), so no
				// catalogue code fits it.
				if status != "" || body.ErrorCode != "InvalidRequest" {
					t.Errorf("DEFAULT_4XX: status %q code %q, want the gateway's status and InvalidRequest", status, body.ErrorCode)
				}
			case rt == "DEFAULT_5XX":
				if status != "" || body.ErrorCode != string(domain.CodeInternalError) {
					t.Errorf("DEFAULT_5XX: status %q code %q, want the gateway's status and InternalError", status, body.ErrorCode)
				}
			default:
				if !catalogue[body.ErrorCode] {
					t.Fatalf("error_code %q is not in the catalogue of SPEC §5", body.ErrorCode)
				}
				if want := fmt.Sprint(domain.ErrorCode(body.ErrorCode).HTTPStatus()); status != want {
					t.Errorf("StatusCode %q, but %s is answered with %s", status, body.ErrorCode, want)
				}
			}
			if status == "503" && headers["Retry-After"] == nil {
				t.Error("a 503 answer must carry Retry-After (SPEC §5)")
			}
		})
	}
	want := map[string]string{"UNAUTHORIZED": "AuthenticationFailed", "ACCESS_DENIED": "InsufficientPermissions"}
	for rt, code := range want {
		if !strings.Contains(asString(asMap(asMap(responses[rt])["ResponseTemplates"])["application/json"]), `"error_code":"`+code+`"`) {
			t.Errorf("%s must answer %s", rt, code)
		}
	}
}

// fillContext replaces API Gateway's $context variables by sample values as
// API Gateway would: $context.error.messageString is a quoted JSON string,
// the others are inserted verbatim.
func fillContext(s string) string {
	s = strings.ReplaceAll(s, "$context.error.messageString", `"Sample \"message\""`)
	return regexp.MustCompile(`\$context\.[A-Za-z.]+`).ReplaceAllString(s, "200")
}

// Least privilege: no action wildcard, "*" resources only where AWS offers
// nothing narrower, no broad managed policy.
func TestIAMLeastPrivilege(t *testing.T) {
	tp := loadTemplate(t)
	// Actions allowed on Resource "*", and why.
	starAllowed := map[string]string{
		"ecs:ListTasks": "IAM authorizes ListTasks on container instances, not on tasks; the statement confines it to the cluster with an ecs:cluster condition",
		// Step Functions' execution logging goes through CloudWatch Logs'
		// vended log delivery, whose APIs support only "*" (Step Functions
		// developer guide, IAM policies for logging to CloudWatch Logs).
		"logs:CreateLogDelivery":        "vended log delivery: no resource-level permissions",
		"logs:GetLogDelivery":           "vended log delivery: no resource-level permissions",
		"logs:UpdateLogDelivery":        "vended log delivery: no resource-level permissions",
		"logs:DeleteLogDelivery":        "vended log delivery: no resource-level permissions",
		"logs:ListLogDeliveries":        "vended log delivery: no resource-level permissions",
		"logs:PutResourcePolicy":        "vended log delivery: no resource-level permissions",
		"logs:DescribeResourcePolicies": "vended log delivery: no resource-level permissions",
		"logs:DescribeLogGroups":        "vended log delivery: no resource-level permissions",
	}
	// Actions allowed on "*" only with a Condition.
	starNeedsCondition := map[string]bool{"ecs:ListTasks": true}
	actionRe := regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9]+$`)

	statements := 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["Effect"]; ok {
				statements++
				checkStatement(t, path, x, actionRe, starAllowed, starNeedsCondition)
				return
			}
			for k, c := range x {
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("Resources", tp.raw["Resources"])
	if statements < 20 {
		t.Errorf("found only %d IAM statements: is the walk still seeing the policies?", statements)
	}

	// SAM policy templates and managed policies: only these.
	allowedTemplates := map[string]bool{"LambdaInvokePolicy": true}
	for id, r := range tp.resources() {
		p := asMap(r["Properties"])
		switch r["Type"] {
		case "AWS::Serverless::Function", "AWS::Serverless::StateMachine":
			for _, pol := range asSlice(p["Policies"]) {
				switch x := pol.(type) {
				case string:
					t.Errorf("%s: managed policy %q: use explicit statements", id, x)
				case map[string]any:
					if _, ok := x["Statement"]; ok {
						continue
					}
					if name := ref(x); name != "" && tp.resources()[name]["Type"] == "AWS::IAM::ManagedPolicy" {
						continue
					}
					for k := range x {
						if !allowedTemplates[k] {
							t.Errorf("%s: policy %v: only inline statements, the stack's own managed policies and %v", id, x, allowedTemplates)
						}
					}
				}
			}
			if r["Type"] == "AWS::Serverless::Function" && p["Role"] != nil {
				t.Errorf("%s: an explicit Role bypasses these checks", id)
			}
		case "AWS::IAM::Role":
			for _, arn := range asSlice(p["ManagedPolicyArns"]) {
				s := asString(asMap(arn)["Fn::Sub"])
				// API Gateway's documented role for writing logs to CloudWatch.
				if s != "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs" {
					t.Errorf("%s: managed policy %v is not on the allow-list", id, arn)
				}
			}
		}
	}
}

func checkStatement(t *testing.T, path string, st map[string]any, actionRe *regexp.Regexp, starAllowed map[string]string, starNeedsCondition map[string]bool) {
	t.Helper()
	for _, k := range []string{"NotAction", "NotResource", "NotPrincipal"} {
		if _, ok := st[k]; ok {
			t.Errorf("%s: %s widens the statement; list what is allowed", path, k)
		}
	}
	var actions []string
	for _, a := range asSlice(st["Action"]) {
		s, ok := a.(string)
		if !ok {
			t.Errorf("%s: action %v is not a literal", path, a)
			continue
		}
		if !actionRe.MatchString(s) {
			t.Errorf("%s: action %q is a wildcard or malformed (no \"*\", no \"service:*\", no \"service:Get*\")", path, s)
		}
		actions = append(actions, s)
	}
	if _, trust := st["Principal"]; trust {
		return // an assume-role (trust) statement has no Resource
	}
	resources := asSlice(st["Resource"])
	if len(resources) == 0 {
		t.Errorf("%s: statement without Resource", path)
	}
	for _, r := range resources {
		s, literal := r.(string)
		if !literal {
			continue // an intrinsic: names a resource of the stack or a parameter
		}
		if s == "*" {
			for _, a := range actions {
				if _, ok := starAllowed[a]; !ok {
					t.Errorf("%s: %s on Resource \"*\" is not on the allow-list; name the resource", path, a)
				}
				if starNeedsCondition[a] && st["Condition"] == nil {
					t.Errorf("%s: %s on Resource \"*\" needs its Condition", path, a)
				}
			}
		} else if strings.Contains(s, "*") && !strings.HasSuffix(s, "/*") && !strings.HasSuffix(s, ":*") {
			t.Errorf("%s: resource %q has a wildcard outside a trailing path", path, s)
		}
	}
}

// Each function may do what its code does, on the stack's own resources.
func TestFunctionPermissions(t *testing.T) {
	tp := loadTemplate(t)
	type grant struct{ action, resource string }
	grants := func(id string) map[grant]bool {
		out := map[grant]bool{}
		for _, pol := range asSlice(tp.props(id)["Policies"]) {
			for _, st := range asSlice(asMap(pol)["Statement"]) {
				s := asMap(st)
				for _, a := range asSlice(s["Action"]) {
					for _, r := range asSlice(s["Resource"]) {
						out[grant{asString(a), describe(r)}] = true
					}
				}
			}
		}
		return out
	}
	table, index := "PipelinesTable.Arn", "${PipelinesTable.Arn}/index/gsi1"
	need := map[string][]grant{
		"AuthorizerFunction": {{"dynamodb:GetItem", table}},
		"ApiFunction": {
			{"dynamodb:GetItem", table}, {"dynamodb:PutItem", table}, {"dynamodb:UpdateItem", table},
			{"dynamodb:DeleteItem", table}, {"dynamodb:Query", table}, {"dynamodb:TransactWriteItems", table},
			{"dynamodb:BatchWriteItem", table}, {"dynamodb:Query", index},
		},
		"StepsFunction": {
			{"dynamodb:GetItem", table}, {"dynamodb:UpdateItem", table}, {"dynamodb:TransactWriteItems", table},
			{"dynamodb:Query", index},
			{"ecs:StopTask", "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${EcsCluster}/*"},
			{"ecs:DescribeTasks", "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${EcsCluster}/*"},
			{"ecs:TagResource", "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${EcsCluster}/*"},
			{"ecs:ListTasks", "*"},
			{"iam:PassRole", "Ref TaskRoleArn"}, {"iam:PassRole", "Ref TaskExecutionRoleArn"},
			{"s3:ListBucket", "arn:${AWS::Partition}:s3:::${StorageBucket}"},
			{"s3:DeleteObject", "arn:${AWS::Partition}:s3:::${StorageBucket}/${StoragePrefix}/*"},
			{"s3:PutObject", "arn:${AWS::Partition}:s3:::${StorageBucket}/${StoragePrefix}/*/sluice-program/*"},
		},
		"ReconcilerFunction": {
			{"dynamodb:GetItem", table}, {"dynamodb:TransactWriteItems", table}, {"dynamodb:Query", index},
			{"ecs:DescribeTasks", "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${EcsCluster}/*"},
			{"ecs:ListTasks", "*"},
		},
	}
	for _, k := range domain.AllWorkflowKinds {
		kind := string(k)
		machine := "Ref " + strings.ToUpper(kind[:1]) + kind[1:] + "StateMachine"
		for _, id := range []string{"ApiFunction", "ReconcilerFunction"} {
			need[id] = append(need[id],
				grant{"states:StartExecution", machine},
				grant{"states:DescribeExecution", executionARNs(kind)},
				grant{"states:StopExecution", executionARNs(kind)})
		}
		need["StepsFunction"] = append(need["StepsFunction"], grant{"states:StartExecution", stateMachineARN(kind)})
	}
	for id, gs := range need {
		have := grants(id)
		for _, g := range gs {
			if !have[g] {
				t.Errorf("%s lacks %s on %s", id, g.action, g.resource)
			}
		}
	}
	// The authorizer only reads keys.
	for g := range grants("AuthorizerFunction") {
		if g.action != "dynamodb:GetItem" {
			t.Errorf("AuthorizerFunction may %s on %s: it needs only GetItem", g.action, g.resource)
		}
	}
	// Nothing but the api deletes pipeline items.
	for _, id := range []string{"StepsFunction", "ReconcilerFunction"} {
		for g := range grants(id) {
			if g.action == "dynamodb:DeleteItem" || g.action == "dynamodb:BatchWriteItem" {
				t.Errorf("%s may %s: only DELETE /v0/pipelines/{name} (the api) deletes", id, g.action)
			}
		}
	}
}

// describe renders a Resource for comparison: a literal, "Ref X", "X.Arn" or
// the text of a !Sub (its first element when it has variables).
func describe(r any) string {
	switch {
	case asString(r) != "":
		return asString(r)
	case ref(r) != "":
		return "Ref " + ref(r)
	case getAtt(r) != "":
		return getAtt(r)
	}
	sub := asMap(r)["Fn::Sub"]
	if l := asSlice(sub); len(l) == 2 {
		return asString(l[0])
	}
	return asString(sub)
}

// The reconciler runs every minute, switchable, and a failed pass is not retried.
func TestReconcilerSchedule(t *testing.T) {
	tp := loadTemplate(t)
	p := tp.props("ReconcilerFunction")
	found := false
	for _, ev := range asMap(p["Events"]) {
		e := asMap(ev)
		if e["Type"] != "Schedule" {
			continue
		}
		found = true
		ep := asMap(e["Properties"])
		if ep["Schedule"] != "rate(1 minute)" {
			t.Errorf("Schedule %v, want rate(1 minute)", ep["Schedule"])
		}
		if cond := asSlice(asMap(ep["State"])["Fn::If"]); len(cond) != 3 || cond[0] != "ReconcilerScheduleEnabled" {
			t.Errorf("State %v: want !If [ReconcilerScheduleEnabled, ENABLED, DISABLED]", ep["State"])
		}
	}
	if !found {
		t.Fatal("ReconcilerFunction has no Schedule event")
	}
	if r := asMap(p["EventInvokeConfig"])["MaximumRetryAttempts"]; r != 0 {
		t.Errorf("EventInvokeConfig.MaximumRetryAttempts %v, want 0 (the next pass replaces a failed one)", r)
	}

	// Sharded: the shards count comes from its parameter (within
	// reconciler.MaxShards), and only then may the function invoke itself,
	// and nothing else.
	shards := asMap(asMap(tp.raw["Parameters"])["ReconcilerShards"])
	if shards["Default"] != 1 || shards["MinValue"] != 1 || shards["MaxValue"] != reconciler.MaxShards {
		t.Errorf("ReconcilerShards %v: want Default 1, MinValue 1, MaxValue %d", shards, reconciler.MaxShards)
	}
	env := asMap(asMap(p["Environment"])["Variables"])
	if ref(env[reconciler.EnvShards]) != "ReconcilerShards" {
		t.Errorf("%s = %v, want !Ref ReconcilerShards", reconciler.EnvShards, env[reconciler.EnvShards])
	}
	pol := tp.resources()["ReconcilerSelfInvokePolicy"]
	if pol["Type"] != "AWS::IAM::Policy" || pol["Condition"] != "ReconcilerSharded" {
		t.Fatalf("ReconcilerSelfInvokePolicy: %v, want an AWS::IAM::Policy with Condition ReconcilerSharded", pol)
	}
	pp := asMap(pol["Properties"])
	if roles := asSlice(pp["Roles"]); len(roles) != 1 || ref(roles[0]) != "ReconcilerFunctionRole" {
		t.Errorf("ReconcilerSelfInvokePolicy roles %v, want [!Ref ReconcilerFunctionRole] (the role SAM generates)", pp["Roles"])
	}
	sts := asSlice(asMap(pp["PolicyDocument"])["Statement"])
	if len(sts) != 1 {
		t.Fatalf("ReconcilerSelfInvokePolicy: %d statements, want 1", len(sts))
	}
	st := asMap(sts[0])
	if a := asSlice(st["Action"]); st["Effect"] != "Allow" || len(a) != 1 || a[0] != "lambda:InvokeFunction" || getAtt(st["Resource"]) != "ReconcilerFunction.Arn" {
		t.Errorf("ReconcilerSelfInvokePolicy statement %v: want lambda:InvokeFunction on ReconcilerFunction.Arn only", st)
	}
	cond := asSlice(asMap(asMap(tp.raw["Conditions"])["ReconcilerSharded"])["Fn::Not"])
	if len(cond) != 1 || fmt.Sprint(asMap(cond[0])["Fn::Equals"]) != "[map[Ref:ReconcilerShards] 1]" {
		t.Errorf("Condition ReconcilerSharded %v, want !Not [!Equals [!Ref ReconcilerShards, 1]]", cond)
	}
}

// Alarms exist only with a topic; the stuck-pipeline alarm watches the
// metric internal/metrics emits; the dashboard is valid JSON naming it.
func TestAlarmsAndDashboard(t *testing.T) {
	tp := loadTemplate(t)
	alarms := tp.resourcesOfType("AWS::CloudWatch::Alarm")
	if len(alarms) < 6 {
		t.Errorf("%d alarms: want state machine failures, API 5xx, Lambda errors and throttles, DynamoDB throttles, stuck pipelines", len(alarms))
	}
	watched := map[string]bool{}
	for _, id := range alarms {
		r := tp.resources()[id]
		p := asMap(r["Properties"])
		if r["Condition"] != "HasAlarmTopic" {
			t.Errorf("%s: Condition %v, want HasAlarmTopic", id, r["Condition"])
		}
		if acts := asSlice(p["AlarmActions"]); len(acts) != 1 || ref(acts[0]) != "AlarmTopicArn" {
			t.Errorf("%s: AlarmActions %v, want [!Ref AlarmTopicArn]", id, p["AlarmActions"])
		}
		if ns := asString(p["Namespace"]); ns != "" {
			watched[ns+"/"+asString(p["MetricName"])] = true
		}
		for _, m := range asSlice(p["Metrics"]) {
			metric := asMap(asMap(asMap(m)["MetricStat"])["Metric"])
			if metric != nil {
				watched[asString(metric["Namespace"])+"/"+asString(metric["MetricName"])] = true
			}
		}
	}
	for _, m := range []string{
		"AWS/States/ExecutionsFailed", "AWS/ApiGateway/5XXError", "AWS/Lambda/Errors", "AWS/Lambda/Throttles",
		"AWS/DynamoDB/ReadThrottleEvents", "AWS/DynamoDB/WriteThrottleEvents",
		metrics.Namespace + "/" + metrics.StuckPipelines,
	} {
		if !watched[m] {
			t.Errorf("no alarm watches %s", m)
		}
	}
	stuck := tp.props("StuckPipelinesAlarm")
	if stuck["Dimensions"] != nil || stuck["Statistic"] != "Maximum" {
		t.Errorf("StuckPipelinesAlarm must watch the dimensionless total (Maximum): %v", stuck)
	}

	dash := tp.resourcesOfType("AWS::CloudWatch::Dashboard")
	if len(dash) != 1 {
		t.Fatalf("%d dashboards", len(dash))
	}
	body := asSlice(asMap(tp.props(dash[0])["DashboardBody"])["Fn::Sub"])
	if len(body) != 2 {
		t.Fatalf("DashboardBody is not !Sub [text, vars]")
	}
	text := regexp.MustCompile(`\$\{[^}]+\}`).ReplaceAllString(asString(body[0]), "x")
	var parsed struct {
		Widgets []struct {
			Properties struct {
				Title   string  `json:"title"`
				Metrics [][]any `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(text), &parsed); err != nil {
		t.Fatalf("DashboardBody is not JSON: %v", err)
	}
	all := asString(body[0])
	for _, want := range []string{
		`"AWS/ApiGateway", "Latency"`, `"5XXError"`, `"AWS/States", "ExecutionsStarted"`, `"ExecutionsFailed"`,
		`"AWS/Lambda", "Errors"`,
		`"` + metrics.Namespace + `", "` + metrics.StopDuration + `", "` + metrics.DimMode + `", "` + metrics.ModeGraceful + `"`,
		`"` + metrics.StopCompleted + `"`, `"` + metrics.StopRequested + `"`, `"` + metrics.StuckPipelines + `"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
}

func TestOutputs(t *testing.T) {
	tp := loadTemplate(t)
	outputs := asMap(tp.raw["Outputs"])
	for _, o := range []string{
		"ApiUrl", "PipelinesTableName",
		"StartStateMachineArn", "SuspendStateMachineArn", "StopStateMachineArn", "ClearStateMachineArn",
		"ApiFunctionName", "AuthorizerFunctionName", "StepsFunctionName", "ReconcilerFunctionName",
	} {
		if asMap(outputs[o])["Value"] == nil {
			t.Errorf("output %s missing", o)
		}
	}
}

// samconfig.toml names only parameters the template has, and every required
// one (no Default), so that a guided deploy prompts for nothing unknown.
func TestSamconfig(t *testing.T) {
	tp := loadTemplate(t)
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{`stack_name = "sluice"`, `capabilities = "CAPABILITY_IAM"`, `confirm_changeset = true`, `resolve_s3 = true`} {
		if !strings.Contains(text, want) {
			t.Errorf("samconfig.toml lacks %s", want)
		}
	}
	m := regexp.MustCompile(`(?m)^parameter_overrides = "(.*)"$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("samconfig.toml has no parameter_overrides string")
	}
	params := asMap(tp.raw["Parameters"])
	named := map[string]bool{}
	for _, kv := range regexp.MustCompile(`(\w+)=\\"[^"\\]*\\"`).FindAllStringSubmatch(m[1], -1) {
		named[kv[1]] = true
		if params[kv[1]] == nil {
			t.Errorf("samconfig.toml sets %s, which the template does not have", kv[1])
		}
	}
	for name, p := range params {
		if _, hasDefault := asMap(p)["Default"]; !hasDefault && !named[name] {
			t.Errorf("required parameter %s is missing from samconfig.toml's parameter_overrides", name)
		}
	}
}
