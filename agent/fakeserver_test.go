package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/ecs"
)

// fakeServer speaks the server side of the agent protocol from memory: it
// is what the agent's tests run against, so they need neither etcd nor the
// real control plane. It follows docs/agent-protocol.md: a snapshot on
// connect, a delta on every change, keepalives, reports only about the caller's
// own tasks, and a task leaves the snapshots once reported STOPPED.
type fakeServer struct {
	t         *testing.T
	srv       *httptest.Server
	joinToken string

	mu         sync.Mutex
	instances  map[string]string // instance ARN -> token
	registers  []protocol.RegisterRequest
	tasks      map[string]*protocol.AssignedTask // placed on the instance, not yet STOPPED
	owner      map[string]string                 // task ARN -> instance ARN
	reports    []protocol.TaskStateChange
	heartbeats int
	status     string        // what heartbeats answer
	changed    chan struct{} // closed and replaced on every change
	rev        int64
	cutStreams chan struct{} // closed to cut every open stream
	streams    int           // streams opened so far
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	fs := &fakeServer{
		t:          t,
		joinToken:  "join-" + randomHex(8),
		instances:  map[string]string{},
		tasks:      map[string]*protocol.AssignedTask{},
		owner:      map[string]string{},
		status:     "ACTIVE",
		changed:    make(chan struct{}),
		cutStreams: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+protocol.PathRegister, fs.register)
	mux.HandleFunc("POST "+protocol.PathHeartbeat, fs.heartbeat)
	mux.HandleFunc("GET "+protocol.PathAssignments, fs.assignments)
	mux.HandleFunc("POST "+protocol.PathTaskState, fs.taskState)
	fs.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		fs.cut()
		fs.srv.Close()
	})
	return fs
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (fs *fakeServer) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(protocol.Error{Code: code, Message: msg})
}

// instance authenticates a request by its instance token.
func (fs *fakeServer) instance(r *http.Request) (string, bool) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for arn, t := range fs.instances {
		if t == tok {
			return arn, true
		}
	}
	return "", false
}

// bump wakes every stream; fs.mu is held.
func (fs *fakeServer) bump() {
	fs.rev++
	close(fs.changed)
	fs.changed = make(chan struct{})
}

func (fs *fakeServer) register(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+fs.joinToken {
		fs.fail(w, 401, "Unauthorized", "bad join token")
		return
	}
	var req protocol.RegisterRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fs.fail(w, 400, "BadRequest", err.Error())
		return
	}
	fs.mu.Lock()
	fs.registers = append(fs.registers, req)
	arn := req.ContainerInstanceARN
	if tok, ok := fs.instances[arn]; !ok || tok != req.InstanceToken {
		arn = "arn:aws:ecs:us-east-1:123456789012:container-instance/" + req.Cluster + "/" + randomHex(16)
		fs.instances[arn] = "inst-" + randomHex(16)
	}
	tok := fs.instances[arn]
	fs.mu.Unlock()
	json.NewEncoder(w).Encode(protocol.RegisterResponse{
		ContainerInstance:       ecs.ContainerInstance{ContainerInstanceARN: arn, Status: "ACTIVE", AgentConnected: true},
		InstanceToken:           tok,
		HeartbeatIntervalMillis: 50,
		HeartbeatTimeoutMillis:  1000,
	})
}

func (fs *fakeServer) heartbeat(w http.ResponseWriter, r *http.Request) {
	if _, ok := fs.instance(r); !ok {
		fs.fail(w, 401, "Unauthorized", "unknown instance token")
		return
	}
	fs.mu.Lock()
	fs.heartbeats++
	st := fs.status
	fs.mu.Unlock()
	json.NewEncoder(w).Encode(protocol.HeartbeatResponse{Status: st})
}

func (fs *fakeServer) assignments(w http.ResponseWriter, r *http.Request) {
	inst, ok := fs.instance(r)
	if !ok {
		fs.fail(w, 401, "Unauthorized", "unknown instance token")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	fl := w.(http.Flusher)
	fs.mu.Lock()
	fs.streams++
	cut := fs.cutStreams
	fs.mu.Unlock()
	keepalive := time.NewTicker(100 * time.Millisecond)
	defer keepalive.Stop()
	enc := json.NewEncoder(w)
	var known map[string]string // task ARN -> desired status the agent was told; nil before the snapshot
	for {
		fs.mu.Lock()
		a := protocol.Assignment{Revision: fs.rev, Tasks: []protocol.AssignedTask{}, Delta: known != nil}
		now := map[string]string{}
		for arn, at := range fs.tasks {
			if fs.owner[arn] == inst {
				now[arn] = at.Task.DesiredStatus
				if d, ok := known[arn]; !ok || d != at.Task.DesiredStatus || !a.Delta {
					a.Tasks = append(a.Tasks, *at)
				}
			}
		}
		for arn := range known {
			if _, ok := now[arn]; !ok {
				a.Removed = append(a.Removed, arn)
			}
		}
		known = now
		changed := fs.changed
		fs.mu.Unlock()
		if enc.Encode(a) != nil {
			return
		}
		fl.Flush()
	wait:
		for {
			select {
			case <-changed:
				break wait
			case <-keepalive.C:
				if enc.Encode(protocol.Assignment{Keepalive: true}) != nil {
					return
				}
				fl.Flush()
			case <-cut:
				return
			case <-r.Context().Done():
				return
			}
		}
	}
}

func (fs *fakeServer) taskState(w http.ResponseWriter, r *http.Request) {
	inst, ok := fs.instance(r)
	if !ok {
		fs.fail(w, 401, "Unauthorized", "unknown instance token")
		return
	}
	var ch protocol.TaskStateChange
	if err := json.NewDecoder(r.Body).Decode(&ch); err != nil {
		fs.fail(w, 400, "BadRequest", err.Error())
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.owner[ch.Task] != inst {
		fs.fail(w, 403, "NotYourTask", "task "+ch.Task+" is not placed on "+inst)
		return
	}
	fs.reports = append(fs.reports, ch)
	if at := fs.tasks[ch.Task]; at != nil {
		// Keep the containers' records, as the server does (copied:
		// snapshots being sent share the old slice).
		cs := slices.Clone(at.Task.Containers)
		for _, cc := range ch.Containers {
			i := slices.IndexFunc(cs, func(c ecs.Container) bool { return c.Name == cc.ContainerName })
			if i < 0 {
				cs = append(cs, ecs.Container{Name: cc.ContainerName})
				i = len(cs) - 1
			}
			cs[i].LastStatus, cs[i].RuntimeID, cs[i].ExitCode = cc.Status, cc.RuntimeID, cc.ExitCode
		}
		at.Task.Containers = cs
	}
	if at := fs.tasks[ch.Task]; at != nil && ch.Status != "" {
		at.Task.LastStatus = ch.Status
		if ch.Status == StatusStopped {
			delete(fs.tasks, ch.Task)
		}
		fs.bump()
	}
	json.NewEncoder(w).Encode(protocol.TaskStateResponse{Accepted: true})
}

// place puts a task of td on the agent's (only) instance and returns its
// ARN.
func (fs *fakeServer) place(td ecs.TaskDefinition, ov *ecs.TaskOverride) string {
	fs.t.Helper()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.instances) == 0 {
		fs.t.Fatal("place: no instance registered")
	}
	var inst string
	for arn := range fs.instances {
		inst = arn
	}
	if n := len(fs.registers); n > 0 && fs.registers[n-1].ContainerInstanceARN != "" {
		inst = fs.registers[n-1].ContainerInstanceARN
	}
	arn := "arn:aws:ecs:us-east-1:123456789012:task/demo/" + randomHex(16)
	fs.tasks[arn] = &protocol.AssignedTask{
		Task: ecs.Task{TaskARN: arn, ClusterARN: "arn:aws:ecs:us-east-1:123456789012:cluster/demo",
			DesiredStatus: StatusRunning, LastStatus: StatusPending, Overrides: ov, ContainerInstanceARN: inst},
		TaskDefinition: td,
	}
	fs.owner[arn] = inst
	fs.bump()
	return arn
}

// stop sets a task's desiredStatus to STOPPED, as StopTask does.
func (fs *fakeServer) stop(arn string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if at := fs.tasks[arn]; at != nil {
		at.Task.DesiredStatus = StatusStopped
		fs.bump()
	}
}

// forget drops a task from the snapshots without the agent's report, as a
// server that marked it STOPPED itself would.
func (fs *fakeServer) forget(arn string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.tasks, arn)
	fs.bump()
}

// cut breaks every open assignments stream.
func (fs *fakeServer) cut() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	close(fs.cutStreams)
	fs.cutStreams = make(chan struct{})
}

func (fs *fakeServer) setStatus(s string) {
	fs.mu.Lock()
	fs.status = s
	fs.mu.Unlock()
}

// reportsOf returns the reports received about a task, in order.
func (fs *fakeServer) reportsOf(arn string) []protocol.TaskStateChange {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []protocol.TaskStateChange
	for _, r := range fs.reports {
		if r.Task == arn {
			out = append(out, r)
		}
	}
	return out
}

// waitReport waits for a report about arn that satisfies ok.
func (fs *fakeServer) waitReport(arn string, timeout time.Duration, ok func(protocol.TaskStateChange) bool) protocol.TaskStateChange {
	fs.t.Helper()
	var got protocol.TaskStateChange
	waitFor(fs.t, timeout, func() bool {
		for _, r := range fs.reportsOf(arn) {
			if ok(r) {
				got = r
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("reports for %s: %s", arn, jsonString(fs.reportsOf(arn))) })
	return got
}

func (fs *fakeServer) waitStatus(arn, status string) protocol.TaskStateChange {
	fs.t.Helper()
	return fs.waitReport(arn, 10*time.Second, func(r protocol.TaskStateChange) bool { return r.Status == status })
}

func jsonString(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v; %s", timeout, describe())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runAgent runs an agent against fs until the test ends; the returned
// channel yields Run's result.
func runAgent(t *testing.T, fs *fakeServer, rt runtime.Runtime, dataDir string, edit ...func(*Config)) (*Agent, <-chan error, context.CancelFunc) {
	t.Helper()
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	cfg := Config{
		Server:  fs.srv.URL,
		Cluster: "demo",
		Token:   fs.joinToken,
		DataDir: dataDir,
		Runtime: rt,
		Version: "test",
		Labels:  map[string]string{"dev.gantry.test": t.Name()},
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	for _, f := range edit {
		f(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, finished := make(chan error, 1), make(chan struct{})
	go func() {
		done <- a.Run(ctx)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop within 10s")
		}
	})
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("agent never registered")
	}
	return a, done, cancel
}

// containerOf returns the report's container state by name.
func containerOf(t *testing.T, r protocol.TaskStateChange, name string) ecs.ContainerStateChange {
	t.Helper()
	i := slices.IndexFunc(r.Containers, func(c ecs.ContainerStateChange) bool { return c.ContainerName == name })
	if i < 0 {
		t.Fatalf("report has no container %q: %s", name, jsonString(r))
	}
	return r.Containers[i]
}
