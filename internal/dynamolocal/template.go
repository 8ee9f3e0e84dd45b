package dynamolocal

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"gopkg.in/yaml.v3"
)

// PipelinesTableLogicalID is the logical id of Sluice's table in
// template.yaml.
const PipelinesTableLogicalID = "PipelinesTable"

// tableSpec is what a local table needs from an AWS::DynamoDB::Table.
type tableSpec struct {
	create *dynamodb.CreateTableInput
	ttl    *types.TimeToLiveSpecification // nil when absent or disabled
}

// TableFromTemplate reads the AWS::DynamoDB::Table resource logicalID from a
// CloudFormation/SAM template and returns the CreateTableInput for a table
// named tableName: attribute definitions, key schema, global and local
// secondary indexes (key schema, projection, provisioned throughput),
// billing mode and stream specification. Properties DynamoDB Local does not
// need (TableName, PITR, SSE, deletion protection, tags, …) are ignored;
// the TTL spec is applied by EnsureTable.
//
// The template is walked as a yaml.Node tree, so CloudFormation short-form
// tags (!Sub, !Ref, !GetAtt, …) anywhere in the file are fine; an intrinsic
// function in a property this function must read is an error, as are a
// missing resource, a resource of another type and an unknown key,
// attribute, projection or billing type.
func TableFromTemplate(templatePath, logicalID, tableName string) (*dynamodb.CreateTableInput, error) {
	spec, err := tableSpecFromTemplate(templatePath, logicalID, tableName)
	if err != nil {
		return nil, err
	}
	return spec.create, nil
}

func tableSpecFromTemplate(templatePath, logicalID, tableName string) (*tableSpec, error) {
	data, err := os.ReadFile(templatePath)
	if err != nil {
		return nil, fmt.Errorf("dynamolocal: reading template: %w", err)
	}
	spec, err := parseTableSpec(data, logicalID, tableName)
	if err != nil {
		return nil, fmt.Errorf("dynamolocal: %s: %w", templatePath, err)
	}
	return spec, nil
}

func parseTableSpec(data []byte, logicalID, tableName string) (*tableSpec, error) {
	if tableName == "" {
		return nil, fmt.Errorf("empty table name")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, fmt.Errorf("empty template")
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: template is not a mapping", root.Line)
	}
	resources := lookup(root, "Resources")
	if resources == nil || resources.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("no Resources mapping")
	}
	res := lookup(resources, logicalID)
	if res == nil {
		return nil, fmt.Errorf("no resource %q in Resources", logicalID)
	}
	p := &parser{path: "Resources." + logicalID}
	if res.Kind != yaml.MappingNode {
		return nil, p.errf(res, "", "is not a mapping")
	}
	if typ := p.str(res, "Type", true); p.err == nil && typ != "AWS::DynamoDB::Table" {
		return nil, p.errf(lookup(res, "Type"), "Type", "is %q, want AWS::DynamoDB::Table", typ)
	}
	props := lookup(res, "Properties")
	if props == nil || props.Kind != yaml.MappingNode {
		return nil, p.errf(res, "Properties", "missing or not a mapping")
	}
	p.path += ".Properties"

	in := &dynamodb.CreateTableInput{TableName: aws.String(tableName)}
	in.AttributeDefinitions = p.attributeDefinitions(lookup(props, "AttributeDefinitions"))
	in.KeySchema = p.keySchema(lookup(props, "KeySchema"), "KeySchema")

	billing := "PROVISIONED" // CloudFormation's default
	if lookup(props, "BillingMode") != nil {
		billing = p.str(props, "BillingMode", true)
	}
	switch billing {
	case "PAY_PER_REQUEST":
		in.BillingMode = types.BillingModePayPerRequest
	case "PROVISIONED":
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = p.throughput(lookup(props, "ProvisionedThroughput"), "ProvisionedThroughput")
	default:
		if p.err == nil {
			return nil, p.errf(lookup(props, "BillingMode"), "BillingMode", "unknown billing mode %q", billing)
		}
	}

	if n := lookup(props, "GlobalSecondaryIndexes"); n != nil {
		for idx, g := range p.seq(n, "GlobalSecondaryIndexes") {
			at := fmt.Sprintf("GlobalSecondaryIndexes[%d]", idx)
			gsi := types.GlobalSecondaryIndex{
				IndexName:  aws.String(p.str(g, "IndexName", true)),
				KeySchema:  p.keySchema(lookup(g, "KeySchema"), at+".KeySchema"),
				Projection: p.projection(lookup(g, "Projection"), at+".Projection"),
			}
			if in.BillingMode == types.BillingModeProvisioned {
				gsi.ProvisionedThroughput = p.throughput(lookup(g, "ProvisionedThroughput"), at+".ProvisionedThroughput")
			}
			in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
		}
	}
	if n := lookup(props, "LocalSecondaryIndexes"); n != nil {
		for idx, l := range p.seq(n, "LocalSecondaryIndexes") {
			at := fmt.Sprintf("LocalSecondaryIndexes[%d]", idx)
			in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
				IndexName:  aws.String(p.str(l, "IndexName", true)),
				KeySchema:  p.keySchema(lookup(l, "KeySchema"), at+".KeySchema"),
				Projection: p.projection(lookup(l, "Projection"), at+".Projection"),
			})
		}
	}
	if n := lookup(props, "StreamSpecification"); n != nil {
		view := p.str(n, "StreamViewType", true)
		if !knownEnum(types.StreamViewType("").Values(), view) && p.err == nil {
			return nil, p.errf(lookup(n, "StreamViewType"), "StreamSpecification.StreamViewType", "unknown stream view type %q", view)
		}
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewType(view)}
	}

	spec := &tableSpec{create: in}
	if n := lookup(props, "TimeToLiveSpecification"); n != nil {
		attr := p.str(n, "AttributeName", false)
		if p.boolean(n, "Enabled") {
			if attr == "" && p.err == nil {
				return nil, p.errf(n, "TimeToLiveSpecification.AttributeName", "missing while Enabled is true")
			}
			spec.ttl = &types.TimeToLiveSpecification{AttributeName: aws.String(attr), Enabled: aws.Bool(true)}
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return spec, nil
}

// parser walks one resource, keeping the first error.
type parser struct {
	path string
	err  error
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) error {
	where := p.path
	if field != "" {
		where += "." + field
	}
	msg := fmt.Sprintf(format, args...)
	if n != nil {
		return fmt.Errorf("line %d: %s: %s", n.Line, where, msg)
	}
	return fmt.Errorf("%s: %s", where, msg)
}

func (p *parser) fail(n *yaml.Node, field, format string, args ...any) {
	if p.err == nil {
		p.err = p.errf(n, field, format, args...)
	}
}

// scalar checks that n is a plain scalar (no intrinsic function tag).
func (p *parser) scalar(n *yaml.Node, field string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		p.fail(n, field, "want a plain value, got a %s (intrinsic functions are not supported here)", kindName(n))
		return "", false
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		p.fail(n, field, "intrinsic function %s %q is not supported here: write a plain value", n.Tag, n.Value)
		return "", false
	}
	return n.Value, true
}

// str returns the scalar field of mapping m ("" when absent and optional).
func (p *parser) str(m *yaml.Node, field string, required bool) string {
	n := lookup(m, field)
	if n == nil {
		if required {
			p.fail(m, field, "missing")
		}
		return ""
	}
	v, _ := p.scalar(n, field)
	if v == "" && required {
		p.fail(n, field, "empty")
	}
	return v
}

func (p *parser) boolean(m *yaml.Node, field string) bool {
	n := lookup(m, field)
	if n == nil {
		return false
	}
	v, ok := p.scalar(n, field)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(n, field, "want true or false, got %q", v)
	}
	return b
}

func (p *parser) int64(m *yaml.Node, field, at string) *int64 {
	n := lookup(m, field)
	if n == nil {
		p.fail(m, at+"."+field, "missing")
		return nil
	}
	v, ok := p.scalar(n, at+"."+field)
	if !ok {
		return nil
	}
	i, err := strconv.ParseInt(v, 10, 64)
	if err != nil || i <= 0 {
		p.fail(n, at+"."+field, "want a positive integer, got %q", v)
		return nil
	}
	return aws.Int64(i)
}

func (p *parser) seq(n *yaml.Node, field string) []*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.fail(n, field, "want a list, got a %s", kindName(n))
		return nil
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for i, c := range n.Content {
		c = deref(c)
		if c.Kind != yaml.MappingNode {
			p.fail(c, fmt.Sprintf("%s[%d]", field, i), "want a mapping, got a %s", kindName(c))
			continue
		}
		out = append(out, c)
	}
	return out
}

func (p *parser) attributeDefinitions(n *yaml.Node) []types.AttributeDefinition {
	if n == nil {
		p.fail(nil, "AttributeDefinitions", "missing")
		return nil
	}
	var out []types.AttributeDefinition
	for _, a := range p.seq(n, "AttributeDefinitions") {
		name := p.str(a, "AttributeName", true)
		typ := p.str(a, "AttributeType", true)
		if !knownEnum(types.ScalarAttributeType("").Values(), typ) {
			p.fail(lookup(a, "AttributeType"), "AttributeDefinitions", "attribute %q has unknown AttributeType %q (want S, N or B)", name, typ)
		}
		out = append(out, types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeType(typ)})
	}
	return out
}

func (p *parser) keySchema(n *yaml.Node, at string) []types.KeySchemaElement {
	if n == nil {
		p.fail(nil, at, "missing")
		return nil
	}
	var out []types.KeySchemaElement
	for _, k := range p.seq(n, at) {
		name := p.str(k, "AttributeName", true)
		typ := p.str(k, "KeyType", true)
		if !knownEnum(types.KeyType("").Values(), typ) {
			p.fail(lookup(k, "KeyType"), at, "attribute %q has unknown KeyType %q (want HASH or RANGE)", name, typ)
		}
		out = append(out, types.KeySchemaElement{AttributeName: aws.String(name), KeyType: types.KeyType(typ)})
	}
	if len(out) == 0 {
		p.fail(n, at, "empty")
	}
	return out
}

func (p *parser) projection(n *yaml.Node, at string) *types.Projection {
	if n == nil {
		p.fail(nil, at, "missing")
		return nil
	}
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.fail(n, at, "want a mapping, got a %s", kindName(n))
		return nil
	}
	proj := &types.Projection{}
	if lookup(n, "ProjectionType") != nil {
		typ := p.str(n, "ProjectionType", true)
		if !knownEnum(types.ProjectionType("").Values(), typ) {
			p.fail(lookup(n, "ProjectionType"), at, "unknown ProjectionType %q (want ALL, KEYS_ONLY or INCLUDE)", typ)
		}
		proj.ProjectionType = types.ProjectionType(typ)
	}
	if na := lookup(n, "NonKeyAttributes"); na != nil {
		na = deref(na)
		if na.Kind != yaml.SequenceNode {
			p.fail(na, at+".NonKeyAttributes", "want a list, got a %s", kindName(na))
			return proj
		}
		for _, a := range na.Content {
			if v, ok := p.scalar(a, at+".NonKeyAttributes"); ok {
				proj.NonKeyAttributes = append(proj.NonKeyAttributes, v)
			}
		}
	}
	return proj
}

func (p *parser) throughput(n *yaml.Node, at string) *types.ProvisionedThroughput {
	if n == nil {
		p.fail(nil, at, "missing (required with BillingMode PROVISIONED)")
		return nil
	}
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.fail(n, at, "want a mapping, got a %s", kindName(n))
		return nil
	}
	return &types.ProvisionedThroughput{
		ReadCapacityUnits:  p.int64(n, "ReadCapacityUnits", at),
		WriteCapacityUnits: p.int64(n, "WriteCapacityUnits", at),
	}
}

// lookup returns the value of key in mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return deref(m.Content[i+1])
		}
	}
	return nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return "scalar"
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "node"
	}
}

func knownEnum[T ~string](values []T, v string) bool {
	for _, x := range values {
		if string(x) == v {
			return true
		}
	}
	return false
}
