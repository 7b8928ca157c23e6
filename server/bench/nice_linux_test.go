package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lowerPriority sets every thread's nice value, threads started after it
// included. It runs in a child process: the value cannot be lowered back
// without privileges.
func TestLowerPriority(t *testing.T) {
	if os.Getenv("METERD_TEST_NICE_CHILD") == "1" {
		if err := lowerPriority(7); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		for range 8 { // new threads, blocked in system calls
			go func() { f, _ := os.Open("/dev/null"); f.Read(make([]byte, 1)); f.Close(); done <- struct{}{} }()
		}
		for range 8 {
			<-done
		}
		tasks, _ := filepath.Glob("/proc/self/task/*/stat")
		if len(tasks) < 2 {
			t.Fatalf("threads: %v", tasks)
		}
		for _, p := range tasks {
			b, err := os.ReadFile(p)
			if err != nil {
				continue // a thread that ended
			}
			// The fields after the command's closing parenthesis: nice is
			// the 19th field of the line, the 17th after it.
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
			if f[16] != "7" {
				t.Errorf("thread %s: nice %s, want 7", p, f[16])
			}
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLowerPriority$", "-test.v")
	cmd.Env = append(os.Environ(), "METERD_TEST_NICE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestLowerPriority") {
		t.Fatalf("the child: %v\n%s", err, out)
	}
}
