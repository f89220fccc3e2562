package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/agent/runtime/docker"
	"github.com/gantry-dev/gantry/internal/testimage"
)

// Every container these tests create carries testLabel (to sweep leftovers of
// killed runs) and runLabel=runID (this process's containers).
const (
	testLabel = "dev.gantry.test"
	runLabel  = "dev.gantry.test.run"
	image     = "gantry-testapp:latest"
)

var runID = randHex(8)

func TestMain(m *testing.M) {
	code := m.Run()
	sweep()
	os.Exit(code)
}

// sweep removes this run's containers, and those of earlier runs that were
// killed before they could clean up (older than ten minutes, so a concurrent
// run's are left alone).
func sweep() {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", testLabel+"=agent/runtime/docker"))})
	if err != nil {
		return
	}
	for _, ctr := range list {
		if ctr.Labels[runLabel] == runID || time.Since(time.Unix(ctr.Created, 0)) > 10*time.Minute {
			c.ContainerRemove(ctx, ctr.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}
	}
}

// fixture is one test's runtime and raw client.
type fixture struct {
	t   *testing.T
	rt  *docker.Runtime
	raw *client.Client
	ctx context.Context
}

func setup(t *testing.T) *fixture {
	t.Helper()
	t.Parallel()
	testimage.Build(t, image)
	raw := testimage.Client(t)
	rt, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &fixture{t: t, rt: rt, raw: raw, ctx: ctx}
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// spec is a testapp container spec with a unique name and the test labels.
func (f *fixture) spec(args ...string) runtime.ContainerSpec {
	name := unsafe.ReplaceAllString(f.t.Name(), "-")
	return runtime.ContainerSpec{
		Name:      fmt.Sprintf("gantry-test-%s-%s", strings.ToLower(name), randHex(3)),
		Image:     image,
		Command:   args,
		Labels:    map[string]string{testLabel: "agent/runtime/docker", runLabel: runID},
		LogConfig: runtime.LogConfig{Driver: "json-file"},
	}
}

// create creates a container and removes it when the test ends, pass or fail.
func (f *fixture) create(spec runtime.ContainerSpec) string {
	f.t.Helper()
	id, err := f.rt.Create(f.ctx, spec)
	if err != nil {
		f.t.Fatalf("create: %v", err)
	}
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f.rt.Remove(ctx, id)
	})
	return id
}

// run creates and starts a container.
func (f *fixture) run(spec runtime.ContainerSpec) string {
	f.t.Helper()
	id := f.create(spec)
	if err := f.rt.Start(f.ctx, id); err != nil {
		f.t.Fatalf("start: %v", err)
	}
	return id
}

// waitStatus polls Inspect until ok accepts the status.
func (f *fixture) waitStatus(id, what string, ok func(runtime.ContainerStatus) bool) runtime.ContainerStatus {
	f.t.Helper()
	var s runtime.ContainerStatus
	waitFor(f.t, time.Minute, what, func() bool {
		var err error
		s, err = f.rt.Inspect(f.ctx, id)
		if err != nil {
			f.t.Fatalf("inspect: %v", err)
		}
		return ok(s)
	})
	return s
}

func (f *fixture) waitExited(id string) runtime.ContainerStatus {
	f.t.Helper()
	return f.waitStatus(id, "container exited", func(s runtime.ContainerStatus) bool { return s.State == runtime.StateExited })
}

// logs reads a container's whole output so far.
func (f *fixture) logs(id string, opts runtime.LogOptions) string {
	f.t.Helper()
	rc, err := f.rt.Logs(f.ctx, id, opts)
	if err != nil {
		f.t.Fatalf("logs: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		f.t.Fatalf("read logs: %v", err)
	}
	return string(b)
}

// waitLog polls the container's logs until they contain want.
func (f *fixture) waitLog(id, want string) {
	f.t.Helper()
	waitFor(f.t, time.Minute, fmt.Sprintf("%q in the logs", want), func() bool {
		return strings.Contains(f.logs(id, runtime.LogOptions{}), want)
	})
}

// hostAddr is where published ports are reachable from this process: the
// engine's host for a tcp:// DOCKER_HOST, else loopback.
func hostAddr() string {
	if u, err := url.Parse(os.Getenv("DOCKER_HOST")); err == nil && u.Scheme == "tcp" && u.Hostname() != "" {
		return u.Hostname()
	}
	return "127.0.0.1"
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nextEvent returns the first event of type typ for id, failing after a minute.
func nextEvent(t *testing.T, evs <-chan runtime.Event, errs <-chan error, id string, typ runtime.EventType) runtime.Event {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case e, ok := <-evs:
			if !ok {
				t.Fatalf("event stream ended waiting for %s: %v", typ, <-errs)
			}
			if e.ContainerID == id && e.Type == typ {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event for %s", typ, id)
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
