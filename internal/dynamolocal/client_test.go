package dynamolocal

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/logging"
)

// logRecorder collects what the SDK logs.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Logf(c logging.Classification, format string, v ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, string(c)+" "+fmt.Sprintf(format, v...))
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// TestConditionalPut proves conditional writes: the second put with
// attribute_not_exists fails with ConditionalCheckFailedException, parsed
// by the client without any checksum warning.
func TestConditionalPut(t *testing.T) {
	t.Parallel()
	inst := Shared(t)
	ctx := testCtx(t, 60*time.Second)
	var logs logRecorder
	client, err := NewClient(ctx, inst.Endpoint, func(o *dynamodb.Options) { o.Logger = &logs })
	if err != nil {
		t.Fatal(err)
	}
	table := UniqueTableName(t)
	in, err := TableFromTemplate(filepath.Join("testdata", "template.yaml"), PipelinesTableLogicalID, table)
	if err != nil {
		t.Fatal(err)
	}
	if err := CreateTable(ctx, client, in); err != nil {
		t.Fatal(err)
	}
	put := &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]types.AttributeValue{
			"pk":         &types.AttributeValueMemberS{Value: "pipeline#p1"},
			"sk":         &types.AttributeValueMemberS{Value: "meta"},
			"generation": &types.AttributeValueMemberN{Value: "1"},
		},
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if _, err := client.PutItem(ctx, put); err != nil {
		t.Fatalf("first conditional put: %v", err)
	}
	_, err = client.PutItem(ctx, put)
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("second conditional put: err = %v (%T), want ConditionalCheckFailedException", err, err)
	}
	if g, ok := ccf.Item["generation"].(*types.AttributeValueMemberN); !ok || g.Value != "1" {
		t.Errorf("ConditionalCheckFailedException.Item = %v, want the old item", ccf.Item)
	}
	// An update fenced on a stale generation fails the same way.
	_, err = client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       map[string]types.AttributeValue{"pk": put.Item["pk"], "sk": put.Item["sk"]},
		UpdateExpression:          aws.String("SET generation = :next"),
		ConditionExpression:       aws.String("generation = :expected"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":next": &types.AttributeValueMemberN{Value: "3"}, ":expected": &types.AttributeValueMemberN{Value: "2"}},
	})
	if !errors.As(err, &ccf) {
		t.Fatalf("fenced update: err = %v, want ConditionalCheckFailedException", err)
	}
	// And a transaction with a failing condition is cancelled.
	_, err = client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(table), Item: put.Item, ConditionExpression: put.ConditionExpression}},
		{Put: &types.Put{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "pipeline#p1"},
			"sk": &types.AttributeValueMemberS{Value: "history#1"},
		}}},
	}})
	var cancelled *types.TransactionCanceledException
	if !errors.As(err, &cancelled) || len(cancelled.CancellationReasons) != 2 || aws.ToString(cancelled.CancellationReasons[0].Code) != "ConditionalCheckFailed" {
		t.Fatalf("transaction: err = %v, want TransactionCanceledException with ConditionalCheckFailed first", err)
	}
	if l := logs.String(); l != "" {
		t.Errorf("the SDK logged:\n%s", l)
	}
}

// TestChecksumValidationWouldWarn shows why NewClient disables the CRC32
// check: with it on, the emulator's error responses make the SDK complain.
func TestChecksumValidationWouldWarn(t *testing.T) {
	t.Parallel()
	inst := Shared(t)
	ctx := testCtx(t, 30*time.Second)
	var logs logRecorder
	client, err := NewClient(ctx, inst.Endpoint, func(o *dynamodb.Options) {
		o.Logger = &logs
		o.DisableValidateResponseChecksum = false
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(UniqueTableName(t))})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v, want ResourceNotFoundException", err)
	}
	// If this starts failing after an SDK or emulator upgrade, the
	// DisableValidateResponseChecksum workaround may be unnecessary.
	if l := logs.String(); !strings.Contains(l, "did not match expected checksum") {
		t.Errorf("expected the SDK to warn about the missing CRC32; it logged %q", l)
	}
}
