package sampleruntime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	checkpointPrefix = "checkpoint-"
	checkpointSuffix = ".json"
	tempPrefix       = ".tmp-checkpoint-"
	checkpointFormat = 1
)

// ErrCrashed is returned by a checkpoint write that was interrupted by the
// checkpoint_crash fault when the exit hook returned (only in tests: in a real
// process the exit hook does not return).
var ErrCrashed = errors.New("crashed while writing a checkpoint (fault injection)")

// CheckpointMeta describes a stored checkpoint, as listed in
// storage_status_details.checkpoints.
type CheckpointMeta struct {
	UUID           string    `json:"uuid"`
	SequenceNumber int64     `json:"sequence_number"`
	CreatedAt      time.Time `json:"created_at"`
	Size           int64     `json:"size"`
}

// Checkpoint is the content of a checkpoint file's payload.
type Checkpoint struct {
	UUID string `json:"uuid"`
	// Generation orders the checkpoints of one storage directory (it is in the file name).
	Generation uint64 `json:"generation"`
	// SequenceNumber is the last processed event (State.LastSequenceNumber).
	SequenceNumber  int64     `json:"sequence_number"`
	CreatedAt       time.Time `json:"created_at"`
	IncarnationUUID string    `json:"incarnation_uuid"`
	Pipeline        string    `json:"pipeline,omitempty"`
	DeploymentID    string    `json:"deployment_id,omitempty"`
	// InitialStartTime is when the first incarnation of this chain of resumed
	// incarnations started, in seconds since the epoch (0 in checkpoints
	// written before it was recorded). /stats reports it as
	// global_metrics.initial_start_time.
	InitialStartTime int64 `json:"initial_start_time,omitempty"`
	State            State `json:"state"`
}

// checkpointFile is the on-disk envelope: the checksum covers the exact payload bytes.
type checkpointFile struct {
	Format   int             `json:"format"`
	Payload  json.RawMessage `json:"payload"`
	Checksum string          `json:"checksum"`
}

// CheckpointFileName is the file name of the checkpoint of a generation.
func CheckpointFileName(generation uint64) string {
	return fmt.Sprintf("%s%020d%s", checkpointPrefix, generation, checkpointSuffix)
}

func parseCheckpointFileName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, checkpointPrefix) || !strings.HasSuffix(name, checkpointSuffix) {
		return 0, false
	}
	g, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, checkpointPrefix), checkpointSuffix), 10, 64)
	return g, err == nil
}

// ReadCheckpoint reads and verifies one checkpoint file: envelope, checksum,
// payload, and the state's own consistency. A torn or corrupt file is an error.
func ReadCheckpoint(path string) (Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Checkpoint{}, err
	}
	return decodeCheckpoint(b)
}

func decodeCheckpoint(b []byte) (Checkpoint, error) {
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Checkpoint{}, fmt.Errorf("torn or corrupt checkpoint: %w", err)
	}
	if f.Format != checkpointFormat {
		return Checkpoint{}, fmt.Errorf("unknown checkpoint format %d", f.Format)
	}
	sum := sha256.Sum256(f.Payload)
	if f.Checksum != "sha256:"+hex.EncodeToString(sum[:]) {
		return Checkpoint{}, errors.New("checkpoint checksum mismatch")
	}
	var cp Checkpoint
	if err := json.Unmarshal(f.Payload, &cp); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint payload: %w", err)
	}
	if cp.UUID == "" {
		return Checkpoint{}, errors.New("checkpoint without uuid")
	}
	if cp.SequenceNumber != cp.State.LastSequenceNumber || !cp.State.Consistent() {
		return Checkpoint{}, fmt.Errorf("checkpoint state inconsistent: %+v at sequence number %d", cp.State, cp.SequenceNumber)
	}
	return cp, nil
}

func encodeCheckpoint(cp Checkpoint) ([]byte, error) {
	payload, err := json.Marshal(cp)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload)
	b, err := json.Marshal(checkpointFile{Format: checkpointFormat, Payload: payload, Checksum: "sha256:" + hex.EncodeToString(sum[:])})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Store keeps checkpoints in a directory. It is safe for concurrent use; writes
// are serialized.
type Store struct {
	dir  string
	keep int
	log  *slog.Logger

	// crashNow, when set, is asked before each write whether this write must crash
	// half-way; exit is then called with code 3.
	crashNow func() bool
	exit     func(code int)
	// initialStart is written into every checkpoint as its InitialStartTime
	// (set by the runtime before the store is used).
	initialStart int64

	writeMu sync.Mutex // serializes Write

	mu   sync.Mutex
	next uint64
	list []storedCheckpoint // valid checkpoints, oldest first
}

type storedCheckpoint struct {
	generation uint64
	meta       CheckpointMeta
}

// OpenStore opens (creating it if needed) a checkpoint directory, removes temp
// files left by an interrupted write, and indexes the valid checkpoints (invalid
// ones are logged and skipped).
func OpenStore(dir string, keep int, log *slog.Logger) (*Store, error) {
	if keep < 1 {
		keep = DefaultKeepCheckpoints
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage directory: %w", err)
	}
	s := &Store{dir: dir, keep: keep, log: log, next: 1}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storage directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) {
			log.Warn("removing temp file of an interrupted checkpoint write", "file", name)
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		g, ok := parseCheckpointFileName(name)
		if !ok {
			continue
		}
		if g >= s.next {
			s.next = g + 1
		}
		path := filepath.Join(dir, name)
		cp, err := ReadCheckpoint(path)
		if err == nil && cp.Generation != g {
			err = fmt.Errorf("checkpoint generation %d does not match its file name", cp.Generation)
		}
		if err != nil {
			log.Warn("skipping invalid checkpoint", "file", name, "error", err.Error())
			continue
		}
		size := int64(0)
		if fi, err := e.Info(); err == nil {
			size = fi.Size()
		}
		s.list = append(s.list, storedCheckpoint{generation: g, meta: CheckpointMeta{
			UUID: cp.UUID, SequenceNumber: cp.SequenceNumber, CreatedAt: cp.CreatedAt, Size: size,
		}})
	}
	slices.SortFunc(s.list, func(a, b storedCheckpoint) int {
		switch {
		case a.generation < b.generation:
			return -1
		case a.generation > b.generation:
			return 1
		}
		return 0
	})
	return s, nil
}

// Dir returns the storage directory.
func (s *Store) Dir() string { return s.dir }

// List returns the valid checkpoints, oldest first (newest last).
func (s *Store) List() []CheckpointMeta {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CheckpointMeta, len(s.list))
	for i, c := range s.list {
		out[i] = c.meta
	}
	return out
}

// Latest reads the newest valid checkpoint; ok is false when there is none. A
// checkpoint that became unreadable since OpenStore is skipped (logged).
func (s *Store) Latest() (cp Checkpoint, ok bool, err error) {
	s.mu.Lock()
	list := slices.Clone(s.list)
	s.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		name := CheckpointFileName(list[i].generation)
		cp, err := ReadCheckpoint(filepath.Join(s.dir, name))
		if err != nil {
			s.log.Warn("skipping invalid checkpoint", "file", name, "error", err.Error())
			continue
		}
		return cp, true, nil
	}
	return Checkpoint{}, false, nil
}

// Write stores a checkpoint of st atomically and prunes old checkpoints.
func (s *Store) Write(st State, incarnation, pipeline, deploymentID string) (CheckpointMeta, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	s.mu.Lock()
	gen := s.next
	s.next++
	s.mu.Unlock()

	cp := Checkpoint{
		UUID:            newUUID(),
		Generation:      gen,
		SequenceNumber:  st.LastSequenceNumber,
		CreatedAt:       time.Now().UTC(),
		IncarnationUUID: incarnation,
		Pipeline:        pipeline,
		DeploymentID:    deploymentID,
		State:           st,
	}
	cp.InitialStartTime = s.initialStart
	data, err := encodeCheckpoint(cp)
	if err != nil {
		return CheckpointMeta{}, err
	}
	tmp, err := os.CreateTemp(s.dir, tempPrefix+"*")
	if err != nil {
		return CheckpointMeta{}, fmt.Errorf("checkpoint: %w", err)
	}
	tmpName := tmp.Name()
	if s.crashNow != nil && s.crashNow() {
		_, _ = tmp.Write(data[:len(data)/2])
		_ = tmp.Sync()
		s.log.Error("checkpoint_crash fault: crashing in the middle of a checkpoint write", "file", filepath.Base(tmpName))
		s.exit(3)
		_ = tmp.Close()
		return CheckpointMeta{}, ErrCrashed
	}
	fail := func(err error) (CheckpointMeta, error) {
		_ = tmp.Close()
		_ = os.Remove(tmpName)
		return CheckpointMeta{}, fmt.Errorf("checkpoint: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	final := filepath.Join(s.dir, CheckpointFileName(gen))
	if err := os.Rename(tmpName, final); err != nil {
		_ = os.Remove(tmpName)
		return CheckpointMeta{}, fmt.Errorf("checkpoint: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return CheckpointMeta{}, fmt.Errorf("checkpoint: %w", err)
	}
	meta := CheckpointMeta{UUID: cp.UUID, SequenceNumber: cp.SequenceNumber, CreatedAt: cp.CreatedAt, Size: int64(len(data))}
	s.mu.Lock()
	s.list = append(s.list, storedCheckpoint{generation: gen, meta: meta})
	s.mu.Unlock()
	s.prune()
	return meta, nil
}

// prune deletes every checkpoint file (valid or not) but the newest keep.
func (s *Store) prune() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		s.log.Warn("listing checkpoints for pruning", "error", err.Error())
		return
	}
	var gens []uint64
	for _, e := range entries {
		if g, ok := parseCheckpointFileName(e.Name()); ok {
			gens = append(gens, g)
		}
	}
	if len(gens) <= s.keep {
		return
	}
	slices.Sort(gens)
	drop := gens[:len(gens)-s.keep]
	for _, g := range drop {
		if err := os.Remove(filepath.Join(s.dir, CheckpointFileName(g))); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("removing old checkpoint", "file", CheckpointFileName(g), "error", err.Error())
		}
	}
	oldestKept := gens[len(gens)-s.keep]
	s.mu.Lock()
	s.list = slices.DeleteFunc(s.list, func(c storedCheckpoint) bool { return c.generation < oldestKept })
	s.mu.Unlock()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
