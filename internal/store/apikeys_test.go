package store

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluicehq/sluice/internal/domain"
)

func testKey(e *env, name string, role Role) APIKey {
	h := hashOf("apikey:" + name)
	return APIKey{Hash: h, ID: h[:12], Name: name, Role: role, Description: "key " + name, CreatedAt: e.clock.Now()}
}

func wantCode(t *testing.T, err error, code domain.ErrorCode) *domain.Error {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != code {
		t.Fatalf("got %v, want a %s", err, code)
	}
	return de
}

func TestAPIKeyByName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k := testKey(e, "ci-deployer", RoleRead)
	if err := e.store.PutAPIKey(e.ctx, k); err != nil {
		t.Fatal(err)
	}
	byName, err := e.store.GetAPIKeyByName(e.ctx, "ci-deployer")
	if err != nil || !reflect.DeepEqual(byName, k) {
		t.Fatalf("by name: %+v %v, want %+v", byName, err, k)
	}
	byHash, err := e.store.GetAPIKey(e.ctx, k.Hash)
	if err != nil || !reflect.DeepEqual(byHash, k) {
		t.Fatalf("by hash: %+v %v", byHash, err)
	}

	// A taken name: DuplicateName, and the first key is untouched.
	other := testKey(e, "other", RoleWrite)
	other.Name = "ci-deployer"
	de := wantCode(t, e.store.PutAPIKey(e.ctx, other), domain.CodeDuplicateName)
	if de.Details != (domain.APIKeyDetails{Name: "ci-deployer"}) {
		t.Errorf("details %+v", de.Details)
	}
	if _, err := e.store.GetAPIKey(e.ctx, other.Hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the losing key's hash item was written: %v", err)
	}
	if got, _ := e.store.GetAPIKeyByName(e.ctx, "ci-deployer"); got.Hash != k.Hash {
		t.Fatal("a duplicate name overwrote the name item")
	}

	// Unknown and invalid names: UnknownApiKey; invalid ones without a call.
	de = wantCode(t, func() error { _, err := e.store.GetAPIKeyByName(e.ctx, "nope"); return err }(), domain.CodeUnknownAPIKey)
	if de.Details != (domain.APIKeyDetails{Name: "nope"}) {
		t.Errorf("details %+v", de.Details)
	}
	s, h := e.hooked()
	for _, bad := range []string{"", "a b", "x/y", string(make([]byte, 64))} {
		_, err := s.GetAPIKeyByName(e.ctx, bad)
		wantCode(t, err, domain.CodeUnknownAPIKey)
	}
	if h.calls.Load() != 0 {
		t.Errorf("%d calls for invalid names", h.calls.Load())
	}
	bad := testKey(e, "x", RoleRead)
	bad.Name = "not valid!"
	wantCode(t, e.store.PutAPIKey(e.ctx, bad), domain.CodeNameDoesNotMatchPattern)
}

func TestDeleteAPIKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k := testKey(e, "doomed", RoleWrite)
	if err := e.store.PutAPIKey(e.ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.DeleteAPIKey(e.ctx, "doomed")
	if err != nil || got.Hash != k.Hash {
		t.Fatalf("delete: %+v %v", got, err)
	}
	// Both items are gone at once: the key no longer authenticates.
	if _, err := e.store.GetAPIKey(e.ctx, k.Hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key still found by hash: %v", err)
	}
	_, err = e.store.GetAPIKeyByName(e.ctx, "doomed")
	wantCode(t, err, domain.CodeUnknownAPIKey)
	_, err = e.store.DeleteAPIKey(e.ctx, "doomed")
	wantCode(t, err, domain.CodeUnknownAPIKey)
	_, err = e.store.DeleteAPIKey(e.ctx, "bad name!")
	wantCode(t, err, domain.CodeUnknownAPIKey)

	// The name is free again, for a new key.
	again := testKey(e, "doomed-2", RoleRead)
	again.Name = "doomed"
	if err := e.store.PutAPIKey(e.ctx, again); err != nil {
		t.Fatalf("re-using a deleted name: %v", err)
	}
	if got, err := e.store.GetAPIKeyByName(e.ctx, "doomed"); err != nil || got.Hash != again.Hash {
		t.Fatalf("after re-use: %+v %v", got, err)
	}
	if n := countItems(e); n != 2 {
		t.Fatalf("%d items left, want the 2 of the one key", n)
	}
}

// A delete that races a delete-and-recreate of the same name never deletes
// the new key: the name item is deleted only while it names the hash read.
func TestDeleteAPIKeyRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := testKey(e, "raced", RoleWrite)
	if err := e.store.PutAPIKey(e.ctx, first); err != nil {
		t.Fatal(err)
	}
	second := testKey(e, "raced-new", RoleRead)
	second.Name = "raced"
	s, h := e.hooked()
	h.beforeTransact = func(n int64, _ *dynamodb.TransactWriteItemsInput) error {
		if n == 1 { // between the read and the first delete: replace the key
			if _, err := e.store.DeleteAPIKey(e.ctx, "raced"); err != nil {
				return err
			}
			return e.store.PutAPIKey(e.ctx, second)
		}
		return nil
	}
	got, err := s.DeleteAPIKey(e.ctx, "raced")
	if err != nil || got.Hash != second.Hash {
		t.Fatalf("delete: %+v %v (want the key that held the name when it was deleted)", got, err)
	}
	if _, err := e.store.GetAPIKey(e.ctx, second.Hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second key: %v", err)
	}
	if n := countItems(e); n != 0 {
		t.Fatalf("%d items left", n)
	}
}

func TestListAPIKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("a-pipeline") // pipelines share the index, never the listing
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("key-%02d", 6-i)
		if err := e.store.PutAPIKey(e.ctx, testKey(e, name, RoleRead)); err != nil {
			t.Fatal(err)
		}
		want = append([]string{name}, want...)
	}
	var got []string
	token, pages := "", 0
	for {
		keys, next, err := e.store.ListAPIKeys(e.ctx, token, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, k := range keys {
			if k.Hash != hashOf("apikey:"+k.Name) || k.Role != RoleRead || k.Description != "key "+k.Name {
				t.Errorf("listed %+v", k)
			}
			got = append(got, k.Name)
		}
		if next == "" {
			break
		}
		token = next
	}
	if !reflect.DeepEqual(got, want) || pages != 3 {
		t.Fatalf("listed %v in %d pages, want %v in 3", got, pages, want)
	}
	all, next, err := e.store.ListAPIKeys(e.ctx, "", 0)
	if err != nil || next != "" || len(all) != 7 {
		t.Fatalf("one page: %d %q %v", len(all), next, err)
	}
	pipelines, _, err := e.store.List(e.ctx, "", 0)
	if err != nil || len(pipelines) != 1 {
		t.Fatalf("pipelines: %d %v", len(pipelines), err)
	}
	// A pipeline list token is no key list token, and the other way round.
	e.create("b-pipeline")
	_, ptoken, _ := e.store.List(e.ctx, "", 1)
	if _, _, err := e.store.ListAPIKeys(e.ctx, ptoken, 1); err == nil {
		t.Error("a pipeline page token accepted by ListAPIKeys")
	}
	_, ktoken, _ := e.store.ListAPIKeys(e.ctx, "", 1)
	if _, _, err := e.store.List(e.ctx, ktoken, 1); err == nil {
		t.Error("a key page token accepted by List")
	}
	wantCode(t, func() error { _, _, err := e.store.ListAPIKeys(e.ctx, "garbage", 1); return err }(), domain.CodeInvalidQueryParameter)
}

// Concurrent creates of one name: exactly one wins, every other gets
// DuplicateName and leaves nothing behind.
func TestConcurrentAPIKeyCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := testKey(e, fmt.Sprintf("contender-%d", i), RoleWrite)
			k.Name = "contended"
			errs[i] = e.store.PutAPIKey(e.ctx, k)
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		default:
			wantCode(t, err, domain.CodeDuplicateName)
		}
	}
	if wins != 1 {
		t.Fatalf("%d winners: %v", wins, errs)
	}
	if n := countItems(e); n != 2 {
		t.Fatalf("%d items, want the 2 of the winner", n)
	}
}

// Keys stored before keys had names (a key item without name, as the old
// PutAPIKey wrote it) keep authenticating, are not listed, and get their id
// as name from NameLegacyAPIKeys, after which they are listed, read and
// deleted by name like any other.
func TestNameLegacyAPIKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	legacy := testKey(e, "legacy", RoleRead)
	legacy.Name = ""
	item, err := marshalAPIKey(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.PutItem(e.ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.store.GetAPIKey(e.ctx, legacy.Hash); err != nil || got.Name != "" || got.ID != legacy.ID {
		t.Fatalf("legacy key: %+v %v", got, err)
	}
	if err := e.store.PutAPIKey(e.ctx, testKey(e, "modern", RoleWrite)); err != nil {
		t.Fatal(err)
	}
	if keys, _, _ := e.store.ListAPIKeys(e.ctx, "", 0); len(keys) != 1 {
		t.Fatalf("listed %+v before naming", keys)
	}
	e.create("p1")

	named, err := e.store.NameLegacyAPIKeys(e.ctx)
	if err != nil || len(named) != 1 || named[0].Name != legacy.ID {
		t.Fatalf("named %+v, %v", named, err)
	}
	want := legacy
	want.Name = legacy.ID
	if got, err := e.store.GetAPIKey(e.ctx, legacy.Hash); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("by hash after naming: %+v %v", got, err)
	}
	if got, err := e.store.GetAPIKeyByName(e.ctx, legacy.ID); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("by name after naming: %+v %v", got, err)
	}
	if keys, _, _ := e.store.ListAPIKeys(e.ctx, "", 0); len(keys) != 2 {
		t.Fatalf("listed %d after naming", len(keys))
	}
	if again, err := e.store.NameLegacyAPIKeys(e.ctx); err != nil || len(again) != 0 {
		t.Fatalf("second run: %+v %v", again, err)
	}
	if _, err := e.store.DeleteAPIKey(e.ctx, legacy.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.GetAPIKey(e.ctx, legacy.Hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted legacy key: %v", err)
	}
}

func TestAPIKeyUUID(t *testing.T) {
	k := APIKey{Hash: hashOf("apikey:x")}
	u := k.UUID()
	if len(u) != 36 || u[:8] != k.Hash[:8] || u[9:13] != k.Hash[8:12] || u[14] != '4' || !containsByte("89ab", u[19]) {
		t.Fatalf("UUID %s of %s", u, k.Hash)
	}
	if k.UUID() != u {
		t.Fatal("not stable")
	}
}

func containsByte(s string, b byte) bool {
	for i := range len(s) {
		if s[i] == b {
			return true
		}
	}
	return false
}

func countItems(e *env) int {
	e.t.Helper()
	n := 0
	var start map[string]types.AttributeValue
	for {
		out, err := e.client.Scan(e.ctx, &dynamodb.ScanInput{TableName: aws.String(e.table), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true),
			FilterExpression: aws.String("begins_with(pk, :k)"), ExpressionAttributeValues: map[string]types.AttributeValue{":k": &types.AttributeValueMemberS{Value: "APIKEY"}}})
		if err != nil {
			e.t.Fatal(err)
		}
		n += len(out.Items)
		if len(out.LastEvaluatedKey) == 0 {
			return n
		}
		start = out.LastEvaluatedKey
	}
}
