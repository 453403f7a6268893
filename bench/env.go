package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// moduleRoot is the featurefs checkout the run builds from.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run bench from inside the featurefs module")
	}
	return filepath.Dir(gomod), nil
}

// buildTools builds fsmount and go-fuse's loopback example. The example is
// built from within the module so that go.mod's go-fuse version is used.
func buildTools(ctx context.Context, root, binDir string) error {
	builds := [][]string{
		{"-o", filepath.Join(binDir, "fsmount"), "./cmd/fsmount"},
		{"-o", filepath.Join(binDir, "loopback"), "github.com/hanwen/go-fuse/v2/example/loopback"},
	}
	for _, args := range builds {
		cmd := exec.CommandContext(ctx, "go", append([]string{"build"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", args[len(args)-1], err, out)
		}
	}
	return nil
}

// requireTools fails early, naming what is missing.
func requireTools() error {
	var missing []string
	for _, t := range []string{"fio", "squashfuse", "mksquashfs", "node", "fusermount3", "cp", "ls", "sync", "df"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tools: %s", strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: dropping the page cache needs it")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("no FUSE: %w", err)
	}
	return nil
}

// dropCaches writes back dirty pages and empties the page cache, dentries
// and inodes of the whole machine, so the next read comes from the disk.
func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200)
}

// machine describes where the figures come from.
func machine(dir string) []string {
	var uts syscall.Utsname
	kernel := "unknown"
	if syscall.Uname(&uts) == nil {
		kernel = cString(uts.Release[:])
	}
	mem := "unknown"
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kib int64
				fmt.Sscan(strings.TrimSpace(v), &kib)
				mem = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
			}
		}
	}
	fsType := "unknown"
	if out, err := exec.Command("df", "--output=fstype", dir).Output(); err == nil {
		if lines := strings.Fields(string(out)); len(lines) > 1 {
			fsType = lines[len(lines)-1]
		}
	}
	return []string{
		fmt.Sprintf("Machine: %d CPUs, %s memory, Linux %s, %s", runtime.NumCPU(), mem, kernel, runtime.Version()),
		fmt.Sprintf("Work directory file system: %s", fsType),
	}
}

func cString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}
