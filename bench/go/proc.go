// CPU time from the kernel: the broker's (all threads, from /proc/<pid>/stat, as warren-bench
// reads it) and the generator's own (getrusage).
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// USER_HZ: the unit of /proc/<pid>/stat's times, which Linux fixes at 100 for user space.
const clockTicks = 100

// utime + stime of a process in seconds, or nil if it cannot be read.
func readCPUSeconds(pid int) *float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// Fields are counted after the command name's closing parenthesis: state is field 3,
	// utime 14 and stime 15.
	text := string(data)
	close := strings.LastIndexByte(text, ')')
	if close < 0 {
		return nil
	}
	fields := strings.Fields(text[close+1:])
	if len(fields) < 13 {
		return nil
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return nil
	}
	secs := float64(utime+stime) / clockTicks
	return &secs
}

func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
