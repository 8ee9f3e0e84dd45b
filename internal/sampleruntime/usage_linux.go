package sampleruntime

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// processUsage reports this process's resident set size (from
// /proc/self/statm) and CPU time, user plus system (getrusage); 0 for what
// cannot be read.
func processUsage() (rssBytes, cpuMsecs uint64) {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				rssBytes = pages * uint64(os.Getpagesize())
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		if ns := ru.Utime.Nano() + ru.Stime.Nano(); ns > 0 {
			cpuMsecs = uint64(ns / 1e6)
		}
	}
	return rssBytes, cpuMsecs
}
