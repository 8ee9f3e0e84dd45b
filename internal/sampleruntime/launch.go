package sampleruntime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
)

// DefaultListen is the listen address when SLUICE_LISTEN is unset.
const DefaultListen = "127.0.0.1:0"

// Launch is a runtime's launch configuration.
type Launch struct {
	Config       Config
	StorageDir   string
	Initial      string
	Listen       string
	PortFile     string
	Pipeline     string
	DeploymentID string
}

// LaunchFromEnv reads the launch configuration from environment variables.
func LaunchFromEnv(getenv func(string) string) (Launch, error) {
	cfg, err := ParseConfig([]byte(getenv(compute.EnvRuntimeConfig)))
	if err != nil {
		return Launch{}, err
	}
	l := Launch{
		Config:       cfg,
		StorageDir:   getenv(compute.EnvStorageDir),
		Initial:      getenv(compute.EnvInitial),
		Listen:       getenv(compute.EnvListen),
		PortFile:     getenv(compute.EnvPortFile),
		Pipeline:     getenv(compute.EnvPipeline),
		DeploymentID: getenv(compute.EnvDeploymentID),
	}
	switch strings.ToLower(l.Initial) {
	case "", "running":
		l.Initial = StatusRunning
	case "paused":
		l.Initial = StatusPaused
	default:
		return Launch{}, fmt.Errorf("%s=%q: want Running or Paused", compute.EnvInitial, l.Initial)
	}
	if l.Listen == "" {
		l.Listen = DefaultListen
	}
	if cfg.Storage && l.StorageDir == "" {
		return Launch{}, fmt.Errorf("%s is required unless runtime_config.storage is false", compute.EnvStorageDir)
	}
	return l, nil
}

// Main runs the sample runtime from environment variables until ctx is done (the
// binary cancels it on SIGTERM/SIGINT) and returns the process exit code.
func Main(ctx context.Context, getenv func(string) string, stderr io.Writer) int {
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With(
		"pipeline", getenv(compute.EnvPipeline), "deployment_id", getenv(compute.EnvDeploymentID))
	l, err := LaunchFromEnv(getenv)
	if err != nil {
		log.Error("bad launch configuration", "error", err.Error())
		return 2
	}
	if err := Run(ctx, l, log, nil); err != nil {
		log.Error("runtime failed", "error", err.Error())
		return 2
	}
	return 0
}

// Run listens, writes the port file, serves the runtime until ctx is done, then
// stops ingesting (no checkpoint) and returns nil. exit is the crash hook (nil:
// os.Exit).
func Run(ctx context.Context, l Launch, log *slog.Logger, exit func(int)) error {
	rt, err := New(Options{
		Config:       l.Config,
		StorageDir:   l.StorageDir,
		Initial:      l.Initial,
		Pipeline:     l.Pipeline,
		DeploymentID: l.DeploymentID,
		Logger:       log,
		Exit:         exit,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", l.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", l.Listen, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: rt.Handler(), ReadHeaderTimeout: 10 * time.Second}
	rt.Start()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if l.PortFile != "" {
		if err := WritePortFile(l.PortFile, port); err != nil {
			_ = srv.Close()
			rt.Close()
			return err
		}
	}
	log.Info("listening", "addr", ln.Addr().String(), "port", port)

	select {
	case <-ctx.Done():
		log.Info("stop signal received: stopping without checkpoint")
	case err := <-serveErr:
		rt.Close()
		return fmt.Errorf("serve: %w", err)
	}
	rt.Close()
	shCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		_ = srv.Close()
	}
	log.Info("stopped")
	return nil
}

// WritePortFile writes port to path atomically (temp file in the same directory,
// fsync, rename), so a reader sees either no file or the whole number.
func WritePortFile(path string, port int) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".port-*")
	if err != nil {
		return fmt.Errorf("port file: %w", err)
	}
	_, werr := tmp.WriteString(strconv.Itoa(port) + "\n")
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("port file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("port file: %w", err)
	}
	return nil
}

// ReadPortFile reads a port file written by WritePortFile.
func ReadPortFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("port file %s: invalid content %q", path, strings.TrimSpace(string(b)))
	}
	return p, nil
}
