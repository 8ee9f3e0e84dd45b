package dynamolocal

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var testTemplate = filepath.Join("testdata", "template.yaml")

func TestTableFromTemplatePipelines(t *testing.T) {
	t.Parallel()
	got, err := TableFromTemplate(testTemplate, PipelinesTableLogicalID, "t1")
	if err != nil {
		t.Fatal(err)
	}
	key := func(name string, typ types.KeyType) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: typ}
	}
	attr := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	want := &dynamodb.CreateTableInput{
		TableName:            aws.String("t1"),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{attr("pk"), attr("sk"), attr("gsi1pk"), attr("gsi1sk")},
		KeySchema:            []types.KeySchemaElement{key("pk", types.KeyTypeHash), key("sk", types.KeyTypeRange)},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:  aws.String("gsi1"),
			KeySchema:  []types.KeySchemaElement{key("gsi1pk", types.KeyTypeHash), key("gsi1sk", types.KeyTypeRange)},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %s\nwant %s", dump(got), dump(want))
	}
	spec, err := tableSpecFromTemplate(testTemplate, PipelinesTableLogicalID, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if spec.ttl == nil || aws.ToString(spec.ttl.AttributeName) != "expires_at" || !aws.ToBool(spec.ttl.Enabled) {
		t.Errorf("ttl = %+v", spec.ttl)
	}
}

func TestTableFromTemplateProvisionedLSIStream(t *testing.T) {
	t.Parallel()
	got, err := TableFromTemplate(testTemplate, "AuditTable", "audit")
	if err != nil {
		t.Fatal(err)
	}
	if got.BillingMode != types.BillingModeProvisioned ||
		aws.ToInt64(got.ProvisionedThroughput.ReadCapacityUnits) != 5 || aws.ToInt64(got.ProvisionedThroughput.WriteCapacityUnits) != 2 {
		t.Errorf("billing %s %s", got.BillingMode, dump(got.ProvisionedThroughput))
	}
	if len(got.LocalSecondaryIndexes) != 1 {
		t.Fatalf("LSIs %s", dump(got.LocalSecondaryIndexes))
	}
	lsi := got.LocalSecondaryIndexes[0]
	if aws.ToString(lsi.IndexName) != "by-actor" || lsi.Projection.ProjectionType != types.ProjectionTypeInclude ||
		!reflect.DeepEqual(lsi.Projection.NonKeyAttributes, []string{"kind", "detail"}) {
		t.Errorf("LSI %s", dump(lsi))
	}
	if len(got.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("GSIs %s", dump(got.GlobalSecondaryIndexes))
	}
	gsi := got.GlobalSecondaryIndexes[0]
	if gsi.Projection.ProjectionType != types.ProjectionTypeKeysOnly || aws.ToInt64(gsi.ProvisionedThroughput.ReadCapacityUnits) != 1 {
		t.Errorf("GSI %s", dump(gsi))
	}
	if got.StreamSpecification == nil || got.StreamSpecification.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Errorf("stream %s", dump(got.StreamSpecification))
	}
	if got.AttributeDefinitions[1].AttributeType != types.ScalarAttributeTypeN {
		t.Errorf("attributes %s", dump(got.AttributeDefinitions))
	}
}

func TestTableFromTemplateErrors(t *testing.T) {
	t.Parallel()
	base, err := os.ReadFile(testTemplate)
	if err != nil {
		t.Fatal(err)
	}
	tpl := string(base)
	for _, tc := range []struct {
		name, template, logicalID, want string
	}{
		{"missing resource", tpl, "NoSuchTable", `no resource "NoSuchTable"`},
		{"wrong type", tpl, "ApiFunction", `is "AWS::Serverless::Function", want AWS::DynamoDB::Table`},
		{"unknown key type", strings.Replace(tpl, "KeyType: RANGE", "KeyType: SORT", 1), PipelinesTableLogicalID, `unknown KeyType "SORT"`},
		{"unknown attribute type", strings.Replace(tpl, "AttributeType: S", "AttributeType: STRING", 1), PipelinesTableLogicalID, `unknown AttributeType "STRING"`},
		{"unknown billing", strings.Replace(tpl, "BillingMode: PAY_PER_REQUEST", "BillingMode: ON_DEMAND", 1), PipelinesTableLogicalID, `unknown billing mode "ON_DEMAND"`},
		{"unknown projection", strings.Replace(tpl, "ProjectionType: ALL", "ProjectionType: SOME", 1), PipelinesTableLogicalID, `unknown ProjectionType "SOME"`},
		{"intrinsic in key", strings.Replace(tpl, "KeyType: HASH", "KeyType: !Ref KeyParam", 1), PipelinesTableLogicalID, `intrinsic function !Ref "KeyParam" is not supported`},
		{"intrinsic billing", strings.Replace(tpl, "BillingMode: PAY_PER_REQUEST", "BillingMode: !If [IsProd, PAY_PER_REQUEST, PROVISIONED]", 1), PipelinesTableLogicalID, "BillingMode: want a plain value"},
		{"provisioned without throughput", strings.Replace(tpl, "BillingMode: PAY_PER_REQUEST", "BillingMode: PROVISIONED", 1), PipelinesTableLogicalID, "ProvisionedThroughput: missing"},
		{"no key schema", strings.Replace(tpl, "      KeySchema:\n        - AttributeName: pk", "      Keys:\n        - AttributeName: pk", 1), PipelinesTableLogicalID, "KeySchema: missing"},
		{"no resources", "AWSTemplateFormatVersion: \"2010-09-09\"\n", PipelinesTableLogicalID, "no Resources"},
		{"bad yaml", "Resources: [\n", PipelinesTableLogicalID, "parsing YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "template.yaml")
			if err := os.WriteFile(path, []byte(tc.template), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := TableFromTemplate(path, tc.logicalID, "t")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want it to contain %q", err, tc.want)
			}
			t.Log(err)
		})
	}
	if _, err := TableFromTemplate(filepath.Join(t.TempDir(), "none.yaml"), PipelinesTableLogicalID, "t"); err == nil {
		t.Error("a missing template file is no error")
	}
}

// TestEnsureTable creates the pipelines table from the template with TTL,
// is idempotent, and refuses a table whose schema drifted.
func TestEnsureTable(t *testing.T) {
	t.Parallel()
	client := SharedClient(t)
	ctx := testCtx(t, 60*time.Second)
	name := UniqueTableName(t)
	for range 2 {
		if err := EnsureTable(ctx, client, testTemplate, name); err != nil {
			t.Fatal(err)
		}
	}
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if desc.Table.TableStatus != types.TableStatusActive || len(desc.Table.GlobalSecondaryIndexes) != 1 ||
		aws.ToString(desc.Table.GlobalSecondaryIndexes[0].IndexName) != "gsi1" {
		t.Errorf("table %s", dump(desc.Table))
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "expires_at" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("TTL %s", dump(ttl.TimeToLiveDescription))
	}

	// Another resource of the same template, PROVISIONED with an LSI and a
	// stream: DynamoDB Local accepts what TableFromTemplate builds.
	audit := UniqueTableName(t)
	if err := EnsureTableFor(ctx, client, testTemplate, "AuditTable", audit); err != nil {
		t.Fatal(err)
	}
	// The audit table's schema is not the pipelines one: drift is refused.
	err = EnsureTable(ctx, client, testTemplate, audit)
	if err == nil || !strings.Contains(err.Error(), "differs from PipelinesTable") || !strings.Contains(err.Error(), "global secondary index gsi1 is missing") {
		t.Fatalf("drifted table: err = %v", err)
	}
	t.Log(err)
}

func TestUniqueTableName(t *testing.T) {
	t.Parallel()
	a, b := UniqueTableName(t), UniqueTableName(t)
	if a == b || !strings.HasPrefix(a, "TestUniqueTableName-") || unsafeTableChars.MatchString(a) {
		t.Errorf("names %q, %q", a, b)
	}
	t.Run("sub test/with spaces", func(t *testing.T) {
		if n := UniqueTableName(t); unsafeTableChars.MatchString(n) || len(n) > 255 {
			t.Errorf("name %q", n)
		}
	})
}

func dump(v any) string {
	b, err := jsonMarshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
