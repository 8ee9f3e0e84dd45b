package ecsfargate

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tagCharsRE: the characters ECS allows in tag keys and values
// (RunTaskInput.Tags in aws-sdk-go-v2 service/ecs).
var tagCharsRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}+\-=._:/@]*$`)

// DefaultRuntimePort is the port the runtime container listens on when Config leaves it 0.
const DefaultRuntimePort = 8080

// Config says where and how the driver runs pipeline tasks.
type Config struct {
	// Cluster is the ECS cluster name or ARN.
	Cluster string
	// TaskDefinition is family:revision or a task definition ARN. It must use the
	// awsvpc network mode and be compatible with Fargate.
	TaskDefinition string
	// ContainerName is the runtime container in the task definition; its environment
	// is overridden with the SLUICE_* variables.
	ContainerName string
	// Subnets and SecurityGroups are the task's awsvpc network configuration.
	Subnets        []string
	SecurityGroups []string
	// AssignPublicIP gives the task a public IP (only for public subnets without NAT).
	AssignPublicIP bool
	// RuntimePort is where the runtime listens (default 8080).
	RuntimePort int
	// StorageBucket and StoragePrefix locate the pipelines' storage:
	// s3://<StorageBucket>/<StoragePrefix>/<pipeline>-<pipelineID>/.
	StorageBucket string
	StoragePrefix string
	// PlatformVersion is the Fargate platform version; empty means LATEST.
	PlatformVersion string
	// CapacityProviderStrategy, when not empty, is used instead of the FARGATE launch
	// type (e.g. FARGATE_SPOT with a FARGATE fallback).
	CapacityProviderStrategy []CapacityProvider
	// Tags are extra tags on every task; the sluice:* tags win over these.
	Tags map[string]string
}

// CapacityProvider is one item of a capacity provider strategy.
type CapacityProvider struct {
	Name   string
	Weight int32
	Base   int32
}

func (c Config) withDefaults() Config {
	if c.RuntimePort == 0 {
		c.RuntimePort = DefaultRuntimePort
	}
	c.StoragePrefix = strings.Trim(c.StoragePrefix, "/")
	return c
}

func (c Config) validate() error {
	var errs []error
	need := func(v, name string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	need(c.Cluster, "Cluster")
	need(c.TaskDefinition, "TaskDefinition")
	need(c.ContainerName, "ContainerName")
	need(c.StorageBucket, "StorageBucket")
	if len(c.Subnets) == 0 {
		errs = append(errs, errors.New("Subnets is required (awsvpc)"))
	}
	if c.RuntimePort < 1 || c.RuntimePort > 65535 {
		errs = append(errs, fmt.Errorf("RuntimePort %d out of range", c.RuntimePort))
	}
	// ECS's limits on what RunTask carries from the config, checked here so a bad
	// config fails at start rather than on every RunTask (sources beside the
	// rules in fakeecs_test.go).
	if len(c.Subnets) > 16 || len(c.SecurityGroups) > 5 {
		errs = append(errs, errors.New("awsvpc allows at most 16 Subnets and 5 SecurityGroups"))
	}
	withBase, weighted := 0, 0
	for _, p := range c.CapacityProviderStrategy {
		if p.Name == "" {
			errs = append(errs, errors.New("CapacityProviderStrategy: provider name is required"))
		}
		if p.Weight < 0 || p.Weight > 1000 || p.Base < 0 || p.Base > 100000 {
			errs = append(errs, fmt.Errorf("CapacityProviderStrategy %s: weight must be 0-1000 and base 0-100000", p.Name))
		}
		if p.Base > 0 {
			withBase++
		}
		if p.Weight > 0 {
			weighted++
		}
	}
	if n := len(c.CapacityProviderStrategy); n > 20 || withBase > 1 || n > 1 && weighted == 0 {
		errs = append(errs, errors.New("CapacityProviderStrategy: at most 20 providers, at most one with a base, and one with a weight when there are several"))
	}
	if len(c.Tags) > 50-3 { // the three sluice:* tags make it up to ECS's 50
		errs = append(errs, fmt.Errorf("Tags: at most 47, not %d", len(c.Tags)))
	}
	for k, v := range c.Tags {
		if k == "" || utf8.RuneCountInString(k) > 128 || utf8.RuneCountInString(v) > 256 ||
			strings.HasPrefix(strings.ToLower(k), "aws:") || strings.HasPrefix(strings.ToLower(v), "aws:") ||
			!tagCharsRE.MatchString(k) || !tagCharsRE.MatchString(v) {
			errs = append(errs, fmt.Errorf("Tags: %q=%q: keys of 1-128 and values of up to 256 letters, digits, spaces and + - = . _ : / @, not starting with aws:", k, v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ecsfargate config: %w", err)
	}
	return nil
}

// Environment variables read by ConfigFromEnv.
const (
	EnvCluster          = "SLUICE_ECS_CLUSTER"
	EnvTaskDefinition   = "SLUICE_ECS_TASK_DEFINITION"
	EnvContainerName    = "SLUICE_ECS_CONTAINER_NAME"
	EnvSubnets          = "SLUICE_ECS_SUBNETS"            // comma-separated
	EnvSecurityGroups   = "SLUICE_ECS_SECURITY_GROUPS"    // comma-separated
	EnvAssignPublicIP   = "SLUICE_ECS_ASSIGN_PUBLIC_IP"   // true|false
	EnvPlatformVersion  = "SLUICE_ECS_PLATFORM_VERSION"   // optional
	EnvCapacityProvider = "SLUICE_ECS_CAPACITY_PROVIDERS" // e.g. FARGATE_SPOT:3:0,FARGATE:1:1 (name:weight:base)
	EnvRuntimePort      = "SLUICE_RUNTIME_PORT"
	EnvStorageBucket    = "SLUICE_STORAGE_BUCKET"
	EnvStoragePrefix    = "SLUICE_STORAGE_PREFIX"
	EnvTags             = "SLUICE_ECS_TAGS" // e.g. team=data,env=prod
)

// ConfigFromEnv reads a Config from the Lambda environment (getenv is usually os.Getenv).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Cluster:         getenv(EnvCluster),
		TaskDefinition:  getenv(EnvTaskDefinition),
		ContainerName:   getenv(EnvContainerName),
		Subnets:         splitList(getenv(EnvSubnets)),
		SecurityGroups:  splitList(getenv(EnvSecurityGroups)),
		PlatformVersion: getenv(EnvPlatformVersion),
		StorageBucket:   getenv(EnvStorageBucket),
		StoragePrefix:   getenv(EnvStoragePrefix),
	}
	if v := getenv(EnvAssignPublicIP); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvAssignPublicIP, err)
		}
		c.AssignPublicIP = b
	}
	if v := getenv(EnvRuntimePort); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvRuntimePort, err)
		}
		c.RuntimePort = p
	}
	for _, item := range splitList(getenv(EnvCapacityProvider)) {
		parts := strings.Split(item, ":")
		p := CapacityProvider{Name: parts[0]}
		if len(parts) > 3 {
			return Config{}, fmt.Errorf("%s: %q is not name[:weight[:base]]", EnvCapacityProvider, item)
		}
		for i, dst := range []*int32{&p.Weight, &p.Base} {
			if len(parts) > i+1 {
				n, err := strconv.ParseInt(parts[i+1], 10, 32)
				if err != nil {
					return Config{}, fmt.Errorf("%s: %q: %w", EnvCapacityProvider, item, err)
				}
				*dst = int32(n)
			}
		}
		c.CapacityProviderStrategy = append(c.CapacityProviderStrategy, p)
	}
	for _, kv := range splitList(getenv(EnvTags)) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return Config{}, fmt.Errorf("%s: %q is not key=value", EnvTags, kv)
		}
		if c.Tags == nil {
			c.Tags = map[string]string{}
		}
		c.Tags[k] = v
	}
	c = c.withDefaults()
	return c, c.validate()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
