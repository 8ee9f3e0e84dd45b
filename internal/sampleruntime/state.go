package sampleruntime

import (
	"crypto/rand"
	"fmt"
)

// State is the job's state.
type State struct {
	Count uint64 `json:"count"`
	Sum   uint64 `json:"sum"`
	// LastSequenceNumber is the last processed event, −1 before the first.
	LastSequenceNumber int64 `json:"last_sequence_number"`
}

// InitialState is the state before any event.
func InitialState() State { return State{LastSequenceNumber: -1} }

// Consistent reports whether the state holds exactly the events 0..last, each once.
// (The sum wraps around uint64 after about 6·10⁹ events; both sides wrap alike.)
func (s State) Consistent() bool {
	if s.LastSequenceNumber < -1 {
		return false
	}
	if s.Count != uint64(s.LastSequenceNumber+1) {
		return false
	}
	return s.Sum == TriangularSum(s.LastSequenceNumber)
}

// TriangularSum is 0+1+…+last (0 for last < 0), modulo 2⁶⁴.
func TriangularSum(last int64) uint64 {
	if last <= 0 {
		return 0
	}
	n := uint64(last)
	if n%2 == 0 {
		return (n / 2) * (n + 1)
	}
	return n * ((n + 1) / 2)
}

// process ingests the next n events.
func (s *State) process(n uint64) {
	for range n {
		seq := s.LastSequenceNumber + 1
		s.Count++
		s.Sum += uint64(seq)
		s.LastSequenceNumber = seq
	}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
