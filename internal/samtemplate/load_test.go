package samtemplate

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
	"gopkg.in/yaml.v3"
)

// repoRoot is the repository root (two levels above this package).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}

// tmpl is template.yaml twice: as goformation parses it, and as plain values
// (intrinsic functions in their JSON form: {"Ref": "X"}, {"Fn::Sub": …}).
type tmpl struct {
	gf  *cloudformation.Template
	raw map[string]any
}

func (t *tmpl) resources() map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range asMap(t.raw["Resources"]) {
		out[id] = asMap(r)
	}
	return out
}

// resourcesOfType returns the logical ids of type typ, sorted.
func (t *tmpl) resourcesOfType(typ string) []string {
	var ids []string
	for id, r := range t.resources() {
		if r["Type"] == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func (t *tmpl) props(id string) map[string]any {
	return asMap(t.resources()[id]["Properties"])
}

// functionProps are a function's properties merged over Globals.Function as
// SAM merges them: maps key by key (recursively), anything else replaced.
func (t *tmpl) functionProps(id string) map[string]any {
	globals := asMap(asMap(t.raw["Globals"])["Function"])
	return mergeGlobals(globals, t.props(id))
}

func mergeGlobals(global, local map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range global {
		out[k] = v
	}
	for k, v := range local {
		gm, gok := out[k].(map[string]any)
		lm, lok := v.(map[string]any)
		if gok && lok && !isIntrinsic(lm) {
			out[k] = mergeGlobals(gm, lm)
			continue
		}
		out[k] = v
	}
	return out
}

var (
	loadOnce sync.Once
	loaded   *tmpl
	loadErr  error
)

// loadTemplate parses template.yaml once per test binary.
func loadTemplate(t testing.TB) *tmpl {
	t.Helper()
	root := repoRoot(t)
	loadOnce.Do(func() { loaded, loadErr = parseTemplate(filepath.Join(root, "template.yaml")) })
	if loadErr != nil {
		t.Fatalf("template.yaml: %v", loadErr)
	}
	return loaded
}

func parseTemplate(path string) (*tmpl, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("not one YAML document")
	}
	raw, err := plain(doc.Content[0])
	if err != nil {
		return nil, err
	}
	rawMap, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the template is not a mapping")
	}

	overrides, err := normalizeForGoformation(&doc, rawMap)
	if err != nil {
		return nil, err
	}
	norm, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, err
	}
	gf, err := goformation.ParseYAMLWithOptions(norm, &intrinsics.ProcessorOptions{ParameterOverrides: overrides})
	if err != nil {
		return nil, fmt.Errorf("goformation: %w", err)
	}
	return &tmpl{gf: gf, raw: rawMap}, nil
}

// normalizeForGoformation adapts the YAML tree (in place) to what
// goformation v7.14.9 can unmarshal, returning parameter overrides:
//
//   - its AWS::Serverless::Function type has no LoggingConfig and rejects
//     unknown properties, and its AWS::Serverless::Api types GatewayResponses
//     as strings: both are removed (the tests read them from the YAML);
//   - it resolves !Ref of a parameter to the parameter's default with the
//     parameter's type, so a Number parameter in an environment variable (a
//     string) or a "true"/"false" String parameter in a boolean property do
//     not unmarshal: environment values become the literal "<env>" (the
//     tests read them from the YAML) and "true"/"false" parameters are
//     overridden with booleans.
func normalizeForGoformation(doc *yaml.Node, raw map[string]any) (map[string]any, error) {
	root := doc.Content[0]
	drop := func(m *yaml.Node, key string) {
		if m == nil || m.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				m.Content = append(m.Content[:i], m.Content[i+2:]...)
				return
			}
		}
	}
	flattenEnv := func(props *yaml.Node) {
		vars := lookup(lookup(props, "Environment"), "Variables")
		if vars == nil || vars.Kind != yaml.MappingNode {
			return
		}
		for i := 1; i < len(vars.Content); i += 2 {
			vars.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "<env>"}
		}
	}
	globalFn := lookup(lookup(root, "Globals"), "Function")
	drop(globalFn, "LoggingConfig")
	flattenEnv(globalFn)
	resources := lookup(root, "Resources")
	if resources == nil {
		return nil, fmt.Errorf("no Resources")
	}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		res := resources.Content[i+1]
		props := lookup(res, "Properties")
		switch lookup(res, "Type").Value {
		case "AWS::Serverless::Function":
			drop(props, "LoggingConfig")
			flattenEnv(props)
		case "AWS::Serverless::Api":
			drop(props, "GatewayResponses")
		}
	}
	overrides := map[string]any{}
	for name, p := range asMap(raw["Parameters"]) {
		pm := asMap(p)
		if av, ok := pm["AllowedValues"].([]any); ok && len(av) == 2 && av[0] == "true" && av[1] == "false" {
			overrides[name] = pm["Default"] == "true"
		}
	}
	return overrides, nil
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// intrinsicNames maps CloudFormation's YAML short forms to their JSON keys.
var intrinsicNames = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition", "!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub",
	"!Join": "Fn::Join", "!Select": "Fn::Select", "!Split": "Fn::Split", "!If": "Fn::If",
	"!Not": "Fn::Not", "!Equals": "Fn::Equals", "!And": "Fn::And", "!Or": "Fn::Or",
	"!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr",
	"!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue", "!Transform": "Fn::Transform",
	"!ToJsonString": "Fn::ToJsonString", "!Length": "Fn::Length",
}

// plain converts a YAML node to maps, slices and scalars, with short-form
// intrinsics in their JSON form. Scalars keep YAML's types (int, bool, string).
func plain(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode {
		return nil, fmt.Errorf("line %d: CloudFormation does not accept YAML aliases", n.Line)
	}
	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			c, err := plain(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = c
		}
		v = m
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			cv, err := plain(c)
			if err != nil {
				return nil, err
			}
			s = append(s, cv)
		}
		v = s
	case yaml.ScalarNode:
		if name, ok := intrinsicNames[n.Tag]; ok {
			if name == "Fn::GetAtt" {
				res, attr, _ := strings.Cut(n.Value, ".")
				return map[string]any{name: []any{res, attr}}, nil
			}
			return map[string]any{name: n.Value}, nil
		}
		var s any
		plainTag := &yaml.Node{Kind: yaml.ScalarNode, Tag: n.Tag, Value: n.Value, Style: n.Style}
		if err := plainTag.Decode(&s); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node kind %d", n.Line, n.Kind)
	}
	if name, ok := intrinsicNames[n.Tag]; ok {
		return map[string]any{name: v}, nil
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	return v, nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asSlice(v any) []any {
	switch s := v.(type) {
	case []any:
		return s
	case nil:
		return nil
	default:
		return []any{s}
	}
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// isIntrinsic reports whether m is one intrinsic function ({"Ref": …}, {"Fn::…": …}).
func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// ref returns X of {"Ref": "X"}, or "".
func ref(v any) string {
	m := asMap(v)
	if len(m) != 1 {
		return ""
	}
	return asString(m["Ref"])
}

// getAtt returns "X.Y" of {"Fn::GetAtt": ["X", "Y"]}, or "".
func getAtt(v any) string {
	m := asMap(v)
	if len(m) != 1 {
		return ""
	}
	parts := asSlice(m["Fn::GetAtt"])
	if len(parts) != 2 {
		return ""
	}
	return fmt.Sprintf("%v.%v", parts[0], parts[1])
}

// intValue returns an integer property (YAML int), or false.
func intValue(v any) (int, bool) {
	i, ok := v.(int)
	return i, ok
}
