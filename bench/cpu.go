package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on
// Linux whatever the kernel's own tick).
const userHZ = 100

// cpuMeter measures the CPU time the service process (all its threads, the
// embedded store included) and this process spend during a measurement.
type cpuMeter struct {
	pid           int
	service, tool time.Duration
	serviceOK     bool
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, tool: selfCPU()}
	if pid != 0 {
		m.service, m.serviceOK = processCPU(pid)
	}
	return m
}

// perRequest returns the CPU time each process spent per request since
// the meter started, in microseconds; service is 0 when unknown.
func (m *cpuMeter) perRequest(requests uint64) (service, tool float64) {
	if requests == 0 {
		return 0, 0
	}
	tool = float64(selfCPU()-m.tool) / float64(time.Microsecond) / float64(requests)
	if m.serviceOK {
		if now, ok := processCPU(m.pid); ok {
			service = float64(now-m.service) / float64(time.Microsecond) / float64(requests)
		}
	}
	return service, tool
}

// processCPU is the user and system time of a process from
// /proc/<pid>/stat.
func processCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime field 14, stime field 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * time.Second / userHZ, true
}

// selfCPU is this process's user and system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
