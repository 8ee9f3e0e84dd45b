// Package samtemplate holds the tests of the SAM application (template.yaml at
// the repository root) and of the state machine definitions it deploys
// (statemachine/*.asl.json). There is no AWS account on the machines that run
// them, so they check what can be checked offline:
//
//   - the template parses with goformation and every Lambda function is built
//     and configured as AWS runs it (provided.al2023, arm64, bootstrap, the
//     Makefile's build-<LogicalId> target, JSON logging, active tracing, a
//     timeout and memory size that fit its callers);
//   - least privilege: no IAM action wildcard anywhere, a "*" resource only for
//     actions on an allow-list that says why, no broad managed policy;
//   - the API: every route of internal/httpapi is an event of the api
//     function (and nothing else), the public ones without the authorizer,
//     access logs in JSON, and every gateway response in SPEC §5's error shape;
//   - the state machines: every ${…} placeholder of an ASL file has a
//     DefinitionSubstitutions entry and every entry is used; asl-validator
//     accepts every ASL file;
//   - the environment variables each function gets are the ones its packages
//     read (their exported Env* constants);
//   - cfn-lint reports nothing.
//
// goformation (v7.14.9) does not know every SAM property this template uses
// and resolves parameters to their defaults with their declared types, so
// loadTemplate hands it a normalized copy (see normalizeForGoformation) and
// the tests read those parts from the YAML itself.
//
// External tools: cfn-lint (preinstalled on the project's machines) and
// asl-validator (npm, pinned in testdata/asl-validator/package.json and
// installed with npm ci into its git-ignored node_modules/). A missing tool
// skips its test locally and fails it when $CI is set.
//
// The README's "Deploy to AWS" section documents the deployment.
package samtemplate
