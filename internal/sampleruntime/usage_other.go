//go:build !linux

package sampleruntime

// processUsage is not measured on this platform: /stats reports 0.
func processUsage() (rssBytes, cpuMsecs uint64) { return 0, 0 }
