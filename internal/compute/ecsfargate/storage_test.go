package ecsfargate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/compute"
)

func TestStorageURI(t *testing.T) {
	d, _, _ := newTestDriver(t, nil)
	if got, want := d.StorageURI("orders", "id-1"), "s3://sluice-storage/pipelines/orders-id-1/"; got != want {
		t.Errorf("StorageURI = %q, want %q", got, want)
	}
	d, _, _ = newTestDriver(t, func(c *Config) { c.StoragePrefix = "" })
	if got, want := d.StorageURI("orders", "id-1"), "s3://sluice-storage/orders-id-1/"; got != want {
		t.Errorf("StorageURI without prefix = %q, want %q", got, want)
	}
}

func TestClearStoragePaginatesAndBatches(t *testing.T) {
	d, _, fs := newTestDriver(t, nil)
	prefix := "pipelines/" + testPipeline + "-" + testPipelineID + "/"
	for i := range 2345 {
		fs.put(fmt.Sprintf("%scheckpoints/%05d/state.bin", prefix, i))
	}
	others := []string{
		"pipelines/" + testPipeline + "-other-id/checkpoints/00001/state.bin", // same name, re-created pipeline
		"pipelines/" + testPipeline + "x-" + testPipelineID + "/a",            // a name that shares the prefix
		"pipelines/" + testPipeline + "-" + testPipelineID,                    // no trailing slash: not inside
		"elsewhere/" + testPipeline + "-" + testPipelineID + "/a",
	}
	fs.put(others...)

	if err := d.ClearStorage(context.Background(), testPipeline, testPipelineID); err != nil {
		t.Fatal(err)
	}
	if got := fs.keys(); strings.Join(got, "\n") != strings.Join(sorted(others), "\n") {
		t.Errorf("left %d objects, want only the other pipelines' %d: %v", len(got), len(others), head(got, 5))
	}
	listCalls, batches := fs.stats()
	if listCalls != 3 {
		t.Errorf("%d ListObjectsV2 calls, want 3 pages", listCalls)
	}
	total := 0
	for _, n := range batches {
		if n > 1000 || n == 0 {
			t.Errorf("DeleteObjects batch of %d keys", n)
		}
		total += n
	}
	if total != 2345 || len(batches) != 3 {
		t.Errorf("DeleteObjects batches %v, want 3 covering 2345 keys", batches)
	}

	// Already clear: success without deleting anything.
	if err := d.ClearStorage(context.Background(), testPipeline, testPipelineID); err != nil {
		t.Fatalf("second ClearStorage: %v", err)
	}
	if _, batches := fs.stats(); len(batches) != 3 {
		t.Errorf("DeleteObjects called for an empty prefix")
	}
}

func TestClearStoragePerKeyErrors(t *testing.T) {
	d, _, fs := newTestDriver(t, nil)
	prefix := "pipelines/" + testPipeline + "-" + testPipelineID + "/"
	for i := range 1500 {
		fs.put(fmt.Sprintf("%sc/%04d", prefix, i))
	}
	bad := prefix + "c/0007"
	fs.with(func() { fs.failKeys[bad] = "AccessDenied" })

	err := d.ClearStorage(context.Background(), testPipeline, testPipelineID)
	if err == nil {
		t.Fatal("ClearStorage succeeded despite a per-key error")
	}
	if errors.Is(err, compute.ErrTemporary) {
		t.Errorf("AccessDenied reported as temporary: %v", err)
	}
	for _, want := range []string{"s3 DeleteObjects", "1 object(s)", bad, "AccessDenied", "1499 deleted"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if got := fs.keys(); len(got) != 1 || got[0] != bad {
		t.Errorf("left %v, want only the failed key (the rest deleted)", head(got, 5))
	}

	// A throttled key is worth retrying.
	fs.with(func() { fs.failKeys[bad] = "SlowDown" })
	err = d.ClearStorage(context.Background(), testPipeline, testPipelineID)
	if !errors.Is(err, compute.ErrTemporary) {
		t.Errorf("SlowDown per-key error = %v, want temporary", err)
	}
}

func TestClearStorageRequestErrors(t *testing.T) {
	d, _, _ := newTestDriver(t, func(c *Config) { c.StorageBucket = "no-such-bucket" })
	err := d.ClearStorage(context.Background(), testPipeline, testPipelineID)
	if err == nil || errors.Is(err, compute.ErrTemporary) || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Errorf("ClearStorage = %v, want a permanent NoSuchBucket error", err)
	}
	if strings.Contains(err.Error(), "FAKEREQUESTID") {
		t.Errorf("error leaks the request id: %v", err)
	}
	// Names that would widen the prefix are refused before any request.
	for _, bad := range [][2]string{{"", testPipelineID}, {testPipeline, ""}, {"a/..", "x"}, {testPipeline, "x/y"}} {
		if err := d.ClearStorage(context.Background(), bad[0], bad[1]); err == nil {
			t.Errorf("ClearStorage(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func head(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
