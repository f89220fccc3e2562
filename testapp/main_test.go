package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// build compiles testapp once per test binary run.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "testapp")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestModes(t *testing.T) {
	bin := build(t)

	t.Run("ExitCode", func(t *testing.T) {
		out, err := exec.Command(bin, "exit", "3", "--after", "10ms").CombinedOutput()
		if got := exitCode(err); got != 3 {
			t.Fatalf("exit code %d, want 3 (%s)", got, out)
		}
	})
	t.Run("PrintEnv", func(t *testing.T) {
		cmd := exec.Command(bin, "print-env")
		cmd.Env = []string{"B=2", "A=1"}
		out, err := cmd.Output()
		if err != nil || string(out) != "A=1\nB=2\n" {
			t.Fatalf("print-env = %q, %v", out, err)
		}
	})
	t.Run("WriteCat", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "f")
		if out, err := exec.Command(bin, "write", f, "hello").CombinedOutput(); err != nil {
			t.Fatalf("write: %v %s", err, out)
		}
		out, err := exec.Command(bin, "cat", f).Output()
		if err != nil || string(out) != "hello" {
			t.Fatalf("cat = %q, %v", out, err)
		}
	})
	t.Run("SleepStopsOnSIGTERM", func(t *testing.T) {
		cmd := exec.Command(bin, "sleep", "60")
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // let it install its handler
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("wait: %v (%s)", err, out.String())
		}
	})
	t.Run("ServeHealth", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		cmd := exec.Command(bin, "serve", "--port", port)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		url := "http://127.0.0.1:" + port
		check := func() int { return exitCode(exec.Command(bin, "healthcheck", url+"/health").Run()) }
		deadline := time.Now().Add(10 * time.Second)
		for check() != 0 {
			if time.Now().After(deadline) {
				t.Fatal("never healthy")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := http.Get(url + "/fail"); err != nil {
			t.Fatal(err)
		}
		if got := check(); got != 1 {
			t.Fatalf("healthcheck after /fail = %d, want 1", got)
		}
		resp, err := http.Get(url + "/exit?code=7")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := exitCode(cmd.Wait()); got != 7 {
			t.Fatalf("exit code %d, want 7", got)
		}
	})
	t.Run("UnknownMode", func(t *testing.T) {
		out, err := exec.Command(bin, "frobnicate").CombinedOutput()
		if exitCode(err) != 2 || !strings.Contains(string(out), "unknown mode") {
			t.Fatalf("got %v %s", err, out)
		}
	})
}
