package testcluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/ecs"
)

// FakeAgent speaks the agent protocol (agent/protocol) without running
// anything: a test registers it, makes it heartbeat, reads its assignments
// and reports task states as it pleases, to drive the control plane
// through situations a real agent reaches only by accident.
type FakeAgent struct {
	t       testing.TB
	url     string
	Cluster string
	ARN     string // the container instance
	Token   string // the instance token
	Resp    protocol.RegisterResponse
}

// AgentOptions describe the instance a FakeAgent registers.
type AgentOptions struct {
	CPU    int64 // CPU units; default 2048
	Memory int64 // MiB; default 4096
	// Attributes are added to ecs.availability-zone (us-east-1a) and
	// ecs.os-type (linux); one of those names replaces the default.
	Attributes []ecs.Attribute
	// ContainerInstanceARN and InstanceToken re-register an instance.
	ContainerInstanceARN, InstanceToken string
	// JoinToken overrides the server's join token.
	JoinToken string
}

// RegisterAgent registers a fake agent's instance in cluster and fails the
// test if the server refuses.
func (c *Cluster) RegisterAgent(t testing.TB, cluster string, o AgentOptions) *FakeAgent {
	t.Helper()
	a, status, body := c.TryRegisterAgent(t, cluster, o)
	if status != http.StatusOK {
		t.Fatalf("register agent: %d %s", status, body)
	}
	return a
}

// TryRegisterAgent registers a fake agent and returns the server's answer
// as is; a is nil unless it succeeded.
func (c *Cluster) TryRegisterAgent(t testing.TB, cluster string, o AgentOptions) (a *FakeAgent, status int, body []byte) {
	t.Helper()
	if o.CPU == 0 {
		o.CPU = 2048
	}
	if o.Memory == 0 {
		o.Memory = 4096
	}
	join := o.JoinToken
	if join == "" {
		join = c.Server.JoinToken()
	}
	req := protocol.RegisterRequest{
		Cluster:              cluster,
		ContainerInstanceARN: o.ContainerInstanceARN,
		InstanceToken:        o.InstanceToken,
		Hostname:             "fake-agent",
		Resources: []ecs.Resource{
			ecs.IntegerResource(ecs.ResourceCPU, o.CPU),
			ecs.IntegerResource(ecs.ResourceMemory, o.Memory),
			ecs.PortsResource(ecs.ResourcePorts, ecs.ReservedPorts),
			ecs.PortsResource(ecs.ResourcePortsUDP, nil),
		},
		Attributes: ecs.MergeAttributes([]ecs.Attribute{
			{Name: ecs.AttributeAvailabilityZone, Value: "us-east-1a"},
			{Name: "ecs.os-type", Value: "linux"},
		}, o.Attributes),
		VersionInfo: ecs.VersionInfo{AgentVersion: "fake", DockerVersion: "none"},
	}
	status, body = AgentCall(t, c.Server.URL(), http.MethodPost, protocol.PathRegister, join, req)
	if status != http.StatusOK {
		return nil, status, body
	}
	a = &FakeAgent{t: t, url: c.Server.URL(), Cluster: cluster}
	if err := json.Unmarshal(body, &a.Resp); err != nil {
		t.Fatalf("register agent: %v: %s", err, body)
	}
	a.ARN, a.Token = a.Resp.ContainerInstance.ContainerInstanceARN, a.Resp.InstanceToken
	return a, status, body
}

// AgentCall sends one agent-protocol request with a bearer token and
// returns the status and body.
func AgentCall(t testing.TB, url, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// Heartbeat sends one heartbeat and returns the instance's status.
func (a *FakeAgent) Heartbeat() string {
	a.t.Helper()
	status, body := AgentCall(a.t, a.url, http.MethodPost, protocol.PathHeartbeat, a.Token, protocol.HeartbeatRequest{})
	if status != http.StatusOK {
		a.t.Fatalf("heartbeat: %d %s", status, body)
	}
	var hb protocol.HeartbeatResponse
	if err := json.Unmarshal(body, &hb); err != nil {
		a.t.Fatal(err)
	}
	return hb.Status
}

// KeepAlive heartbeats at the interval the server asked for until the
// returned function is called or the test ends.
func (a *FakeAgent) KeepAlive() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	a.t.Cleanup(cancel)
	every := time.Duration(a.Resp.HeartbeatIntervalMillis) * time.Millisecond
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.url+protocol.PathHeartbeat, bytes.NewReader([]byte("{}")))
				req.Header.Set("Authorization", "Bearer "+a.Token)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
	return cancel
}

// Report sends a task state change and returns the status and answer.
func (a *FakeAgent) Report(ch protocol.TaskStateChange) (int, protocol.TaskStateResponse) {
	a.t.Helper()
	status, body := AgentCall(a.t, a.url, http.MethodPost, protocol.PathTaskState, a.Token, ch)
	var resp protocol.TaskStateResponse
	if status == http.StatusOK {
		if err := json.Unmarshal(body, &resp); err != nil {
			a.t.Fatal(err)
		}
	}
	return status, resp
}

// MustReport sends a task state change the server must accept.
func (a *FakeAgent) MustReport(ch protocol.TaskStateChange) {
	a.t.Helper()
	status, resp := a.Report(ch)
	if status != http.StatusOK || !resp.Accepted {
		a.t.Fatalf("report %s %s: %d %+v", ch.Task, ch.Status, status, resp)
	}
}

// Assignments opens the assignments stream; messages arrive on the
// channel, which closes when the stream ends (ctx ends, the server shuts
// down, or the test ends).
func (a *FakeAgent) Assignments(ctx context.Context) <-chan protocol.Assignment {
	a.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	a.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+protocol.PathAssignments, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("assignments: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.t.Fatalf("assignments: %d %s", resp.StatusCode, b)
	}
	out := make(chan protocol.Assignment, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var m protocol.Assignment
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				return
			}
			select {
			case out <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Autopilot runs the fake agent's tasks the simplest way: every task
// desired RUNNING is reported RUNNING (its containers RUNNING), every task
// desired STOPPED is reported STOPPED (its containers exited 0), until the
// returned function is called or the test ends. It heartbeats too.
func (a *FakeAgent) Autopilot() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	a.t.Cleanup(cancel)
	stopBeats := a.KeepAlive()
	msgs := a.Assignments(ctx)
	go func() {
		defer stopBeats()
		for m := range msgs {
			for _, at := range m.Tasks {
				t := at.Task
				ch := protocol.TaskStateChange{SubmitTaskStateChangeRequest: ecs.SubmitTaskStateChangeRequest{Task: t.TaskARN}}
				code := int32(0)
				for i, c := range t.Containers {
					cc := ecs.ContainerStateChange{ContainerName: c.Name, RuntimeID: fmt.Sprintf("fake-%d-%s", i, t.TaskARN[len(t.TaskARN)-8:])}
					if t.DesiredStatus == ecs.TaskStatusStopped {
						cc.Status, cc.ExitCode = ecs.ContainerStatusStopped, &code
					} else {
						cc.Status = ecs.ContainerStatusRunning
					}
					ch.Containers = append(ch.Containers, cc)
				}
				switch {
				case t.DesiredStatus == ecs.TaskStatusStopped:
					ch.Status = ecs.TaskStatusStopped
				case t.LastStatus == ecs.TaskStatusPending:
					ch.Status = ecs.TaskStatusRunning
				default:
					continue
				}
				b, _ := json.Marshal(ch)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.url+protocol.PathTaskState, bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+a.Token)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
	return cancel
}

// WaitFor polls cond until it holds, failing the test with what after
// timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
