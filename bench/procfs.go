package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// procReader reads process and machine figures from /proc.
type procReader struct {
	// ticksPerSecond is the kernel's USER_HZ (clock ticks in /proc/*/stat).
	ticksPerSecond float64
}

// newProcReader asks getconf for CLK_TCK, falling back to Linux's usual 100.
func newProcReader() procReader {
	tck := 100.0
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			tck = v
		}
	}
	return procReader{ticksPerSecond: tck}
}

// cpuSeconds returns the user+system CPU time of process pid, in seconds,
// from /proc/PID/stat (fields 14 utime and 15 stime).
func (r procReader) cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	ticks, err := parseStatTicks(b)
	if err != nil {
		return 0, fmt.Errorf("stat of %d: %w", pid, err)
	}
	return float64(ticks) / r.ticksPerSecond, nil
}

// parseStatTicks returns utime+stime from the content of /proc/PID/stat. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatTicks(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat line")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat line has %d fields after the name", len(f))
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	s, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return u + s, nil
}

// memStatus holds the memory lines of /proc/PID/status, in bytes.
type memStatus struct {
	RSS  int64 // VmRSS: resident now
	HWM  int64 // VmHWM: peak resident since the process started
	Thrd int64 // Threads
}

// status reads /proc/PID/status.
func (r procReader) status(pid int) (memStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, fmt.Errorf("read status of %d: %w", pid, err)
	}
	return parseStatus(b)
}

// parseStatus extracts VmRSS, VmHWM (kB lines) and Threads.
func parseStatus(b []byte) (memStatus, error) {
	var m memStatus
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSS = n << 10
			found++
		case "VmHWM":
			m.HWM = n << 10
			found++
		case "Threads":
			m.Thrd = n
		}
	}
	if found < 2 {
		return m, fmt.Errorf("status has no VmRSS/VmHWM lines")
	}
	return m, nil
}

// machineCPU is the machine-wide CPU time from the first line of /proc/stat.
type machineCPU struct {
	Busy, Total float64 // seconds summed over all CPUs
}

// machine reads /proc/stat.
func (r procReader) machine() (machineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	busy, total, err := parseMachineStat(b)
	if err != nil {
		return machineCPU{}, err
	}
	return machineCPU{Busy: float64(busy) / r.ticksPerSecond, Total: float64(total) / r.ticksPerSecond}, nil
}

// parseMachineStat returns busy and total ticks of the aggregate "cpu" line
// (idle and iowait count as not busy; guest time is already in user).
func parseMachineStat(b []byte) (busy, total uint64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, s := range f[1:] {
		if i >= 8 { // user nice system idle iowait irq softirq steal
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat field %d: %w", i+1, err)
		}
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total, nil
}

// loadAverage returns the 1-minute load average.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// cpuModel returns the "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// memTotal returns MemTotal of /proc/meminfo in bytes.
func memTotal() int64 { return meminfo("MemTotal") }

// memAvailable returns MemAvailable of /proc/meminfo in bytes.
func memAvailable() int64 { return meminfo("MemAvailable") }

// meminfo returns the line key of /proc/meminfo in bytes, 0 if unknown.
func meminfo(key string) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == key {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
