package dynamolocal

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestRestartKeepsData starts a persistent instance, writes an item,
// restarts it on the same port and data dir, reads the item back, and stops
// it (twice: Stop is idempotent).
func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	jarDir := jarDirForTest(t)
	ctx := testCtx(t, 90*time.Second)
	dbPath := filepath.Join(t.TempDir(), "data")
	stdout := &syncWriter{w: &strings.Builder{}}
	begin := time.Now()
	inst, err := Start(ctx, Options{JarDir: jarDir, DBPath: dbPath, Stdout: stdout})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("persistent start: %v on %s", time.Since(begin), inst.Endpoint)
	t.Cleanup(func() { _ = inst.Stop() })
	if inst.Port == 0 || inst.Endpoint != "http://127.0.0.1:"+strconv.Itoa(inst.Port) {
		t.Fatalf("instance %+v", inst)
	}
	if !inst.Running() || inst.Pid() == 0 {
		t.Fatal("not running after Start")
	}

	client, err := NewClient(ctx, inst.Endpoint)
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
	item := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "pipeline#p1"},
		"sk": &types.AttributeValueMemberS{Value: "meta"},
		"v":  &types.AttributeValueMemberN{Value: "7"},
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dbPath, "shared-local-instance.db")); err != nil {
		t.Errorf("no database file in the data dir: %v", err)
	}

	oldPid := inst.Pid()
	begin = time.Now()
	if err := inst.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart (stop + start): %v", time.Since(begin))
	if inst.Pid() == oldPid || !inst.Running() {
		t.Fatalf("pid %d after restart (was %d), running %v", inst.Pid(), oldPid, inst.Running())
	}
	got, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := got.Item["v"].(*types.AttributeValueMemberN); !ok || v.Value != "7" {
		t.Fatalf("item after restart = %v", got.Item)
	}

	begin = time.Now()
	if err := inst.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop: %v", time.Since(begin))
	if err := inst.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if inst.Running() || inst.Pid() != 0 {
		t.Fatal("running after Stop")
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(inst.Port), time.Second); err == nil {
		c.Close()
		t.Fatal("port still answers after Stop")
	}
	out := stdout.String()
	for _, want := range []string{"DbPath:\t" + dbPath, "SharedDb:\ttrue", "Port:\t" + strconv.Itoa(inst.Port)} {
		if !strings.Contains(out, want) {
			t.Errorf("emulator stdout lacks %q:\n%s", want, out)
		}
	}
}

// TestStartPortTaken: a port in use fails at once with ErrPortInUse.
func TestStartPortTaken(t *testing.T) {
	t.Parallel()
	jarDir := jarDirForTest(t)
	ctx := testCtx(t, 30*time.Second)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	begin := time.Now()
	inst, err := Start(ctx, Options{JarDir: jarDir, Port: port})
	if err == nil {
		inst.Stop()
		t.Fatal("Start on a taken port succeeded")
	}
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("err = %v; want ErrPortInUse naming port %d", err, port)
	}
	t.Logf("%v (after %v)", err, time.Since(begin))
}

// TestStartPortTakenByRace: when the port is grabbed after the up-front
// check, the emulator's own bind failure is reported (its JVM would
// otherwise hang on without listening) and the process is stopped.
func TestStartPortTakenByRace(t *testing.T) {
	t.Parallel()
	jarDir := jarDirForTest(t)
	ctx := testCtx(t, 30*time.Second)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	begin := time.Now()
	inst, err := Start(ctx, Options{JarDir: jarDir, Port: port, skipPortCheck: true})
	if err == nil {
		inst.Stop()
		t.Fatal("Start on a taken port succeeded")
	}
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "BindException") {
		t.Fatalf("err = %v; want ErrPortInUse with the emulator's stderr", err)
	}
	t.Logf("detected in %v", time.Since(begin))
}

func TestStartJavaMissing(t *testing.T) {
	t.Parallel()
	_, err := Start(testCtx(t, 10*time.Second), Options{JarDir: fakeJarDir(t), Java: filepath.Join(t.TempDir(), "no-java")})
	if err == nil || !strings.Contains(err.Error(), "java not found") || !strings.Contains(err.Error(), "Java 17") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartJavaTooOld(t *testing.T) {
	t.Parallel()
	java := filepath.Join(t.TempDir(), "java")
	script := "#!/bin/sh\necho 'java version \"1.8.0_381\"' >&2\necho 'Java(TM) SE Runtime Environment (build 1.8.0_381-b09)' >&2\n"
	if err := os.WriteFile(java, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Start(testCtx(t, 10*time.Second), Options{JarDir: fakeJarDir(t), Java: java})
	if err == nil || !strings.Contains(err.Error(), "is Java 8") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartNeedsJar(t *testing.T) {
	t.Parallel()
	_, err := Start(testCtx(t, 10*time.Second), Options{JarDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "EnsureJar") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseJavaMajor(t *testing.T) {
	t.Parallel()
	for out, want := range map[string]int{
		"openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime Environment":      17,
		"java version \"1.8.0_381\"\n":                                             8,
		"Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version \"21\" 2023-09-19\n": 21,
		"openjdk version \"11.0.2-ea\" 2019-01-15\n":                               11,
	} {
		got, err := parseJavaMajor(out)
		if err != nil || got != want {
			t.Errorf("parseJavaMajor(%q) = %d, %v; want %d", out, got, err, want)
		}
	}
	if _, err := parseJavaMajor("nonsense"); err == nil {
		t.Error("parseJavaMajor(nonsense) succeeded")
	}
}

// fakeJarDir is enough of a jar dir for Start's checks before java runs.
func fakeJarDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, JarName), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
