package dynamolocal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableWaitTimeout bounds the wait for a new table to become ACTIVE.
const TableWaitTimeout = 30 * time.Second

// CreateTable creates a table and waits until it is ACTIVE.
func CreateTable(ctx context.Context, client *dynamodb.Client, input *dynamodb.CreateTableInput) error {
	if input == nil || input.TableName == nil {
		return errors.New("dynamolocal: CreateTable: no table name")
	}
	if _, err := client.CreateTable(ctx, input); err != nil {
		return fmt.Errorf("dynamolocal: creating table %s: %w", *input.TableName, err)
	}
	return waitActive(ctx, client, *input.TableName)
}

func waitActive(ctx context.Context, client *dynamodb.Client, name string) error {
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, TableWaitTimeout); err != nil {
		return fmt.Errorf("dynamolocal: waiting for table %s to be ACTIVE: %w", name, err)
	}
	return nil
}

// EnsureTable makes sure the table tableName exists with the schema of
// template.yaml's PipelinesTable (see TableFromTemplate) and its TTL
// setting: it creates the table when absent and otherwise checks that the
// existing table's keys and indexes still match the template. It is
// idempotent; the local stack calls it on every start of a persistent
// store.
func EnsureTable(ctx context.Context, client *dynamodb.Client, templatePath, tableName string) error {
	return EnsureTableFor(ctx, client, templatePath, PipelinesTableLogicalID, tableName)
}

// EnsureTableFor is EnsureTable for any AWS::DynamoDB::Table resource.
func EnsureTableFor(ctx context.Context, client *dynamodb.Client, templatePath, logicalID, tableName string) error {
	spec, err := tableSpecFromTemplate(templatePath, logicalID, tableName)
	if err != nil {
		return err
	}
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tableName)})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		_, err := client.CreateTable(ctx, spec.create)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // in use: a concurrent caller won
			return fmt.Errorf("dynamolocal: creating table %s: %w", tableName, err)
		}
		if err := waitActive(ctx, client, tableName); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("dynamolocal: describing table %s: %w", tableName, err)
	default:
		if err := checkSchema(spec.create, desc.Table); err != nil {
			return fmt.Errorf("dynamolocal: table %s differs from %s in %s: %w (delete the local data dir, or the table, to recreate it)",
				tableName, logicalID, templatePath, err)
		}
		if desc.Table.TableStatus != types.TableStatusActive {
			if err := waitActive(ctx, client, tableName); err != nil {
				return err
			}
		}
	}
	return ensureTTL(ctx, client, tableName, spec.ttl)
}

// ensureTTL applies the template's TTL spec. DynamoDB Local 1.25 supports
// UpdateTimeToLive and DescribeTimeToLive (status ENABLED at once). Code
// must not rely on expired items being deleted, locally or in AWS (where it
// takes up to days).
func ensureTTL(ctx context.Context, client *dynamodb.Client, tableName string, ttl *types.TimeToLiveSpecification) error {
	if ttl == nil {
		return nil
	}
	cur, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tableName)})
	if err != nil {
		return fmt.Errorf("dynamolocal: describing TTL of %s: %w", tableName, err)
	}
	if d := cur.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == aws.ToString(ttl.AttributeName) &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(tableName), TimeToLiveSpecification: ttl}); err != nil {
		return fmt.Errorf("dynamolocal: enabling TTL on %s.%s: %w", tableName, aws.ToString(ttl.AttributeName), err)
	}
	return nil
}

// checkSchema compares the keys and index key schemas of an existing table
// with the wanted ones.
func checkSchema(want *dynamodb.CreateTableInput, got *types.TableDescription) error {
	var diffs []string
	if a, b := keysString(want.KeySchema), keysString(got.KeySchema); a != b {
		diffs = append(diffs, fmt.Sprintf("key schema is %s, want %s", b, a))
	}
	diffs = append(diffs, diffIndexes("global secondary index",
		indexes(want.GlobalSecondaryIndexes, wantedGSI), indexes(got.GlobalSecondaryIndexes, describedGSI))...)
	diffs = append(diffs, diffIndexes("local secondary index",
		indexes(want.LocalSecondaryIndexes, wantedLSI), indexes(got.LocalSecondaryIndexes, describedLSI))...)
	if len(diffs) > 0 {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

// index is what checkSchema compares of a secondary index, whichever of
// the SDK's four index types (wanted or described, global or local) it is.
type index struct {
	name       *string
	keys       []types.KeySchemaElement
	projection *types.Projection
}

func wantedGSI(i types.GlobalSecondaryIndex) index {
	return index{i.IndexName, i.KeySchema, i.Projection}
}
func describedGSI(i types.GlobalSecondaryIndexDescription) index {
	return index{i.IndexName, i.KeySchema, i.Projection}
}
func wantedLSI(i types.LocalSecondaryIndex) index {
	return index{i.IndexName, i.KeySchema, i.Projection}
}
func describedLSI(i types.LocalSecondaryIndexDescription) index {
	return index{i.IndexName, i.KeySchema, i.Projection}
}

// indexes maps each index's name to its key schema and projection, as text.
func indexes[I any](xs []I, of func(I) index) map[string]string {
	m := map[string]string{}
	for _, x := range xs {
		i := of(x)
		m[aws.ToString(i.name)] = keysString(i.keys) + " " + projString(i.projection)
	}
	return m
}

func diffIndexes(kind string, want, got map[string]string) []string {
	var diffs []string
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s %s is missing", kind, name))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%s %s is %s, want %s", kind, name, g, w))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s %s is not in the template", kind, name))
		}
	}
	slices.Sort(diffs)
	return diffs
}

func keysString(ks []types.KeySchemaElement) string {
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func projString(p *types.Projection) string {
	if p == nil {
		return "projection:-"
	}
	attrs := slices.Clone(p.NonKeyAttributes)
	slices.Sort(attrs)
	return "projection:" + string(p.ProjectionType) + "(" + strings.Join(attrs, ",") + ")"
}
