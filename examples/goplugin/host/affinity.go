// CPU placement for -bench -plugin-cpu: the plugin process starts pinned to one CPU. The mask
// of the thread that forks is inherited by the child, so the launch runs on a locked OS thread
// whose mask is switched to the plugin's CPU for the fork and restored after.

package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"unsafe"
)

// cpuMask is a kernel cpu_set_t of 1024 CPUs.
type cpuMask [16]uint64

func threadAffinity() (cpuMask, error) {
	var m cpuMask
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if errno != 0 {
		return m, errno
	}
	return m, nil
}

func setThreadAffinity(m cpuMask) error {
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if errno != 0 {
		return errno
	}
	return nil
}

// withThreadOnCPU runs f on a locked OS thread pinned to cpu (cpu < 0: unchanged); a process
// forked by f starts on cpu.
func withThreadOnCPU(cpu int, f func() error) error {
	if cpu < 0 {
		return f()
	}
	if cpu >= 1024 {
		return fmt.Errorf("no CPU %d", cpu)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	saved, err := threadAffinity()
	if err != nil {
		return fmt.Errorf("sched_getaffinity: %v", err)
	}
	var m cpuMask
	m[cpu/64] = 1 << (uint(cpu) % 64)
	if err := setThreadAffinity(m); err != nil {
		return fmt.Errorf("sched_setaffinity(CPU %d): %v", cpu, err)
	}
	defer setThreadAffinity(saved)
	return f()
}

// cpusAllowed is the Cpus_allowed_list of /proc/PID/status ("self" for this process).
func cpusAllowed(pid string) string {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "Cpus_allowed_list:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "Cpus_allowed_list:"))
		}
	}
	return ""
}
