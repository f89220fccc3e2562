package agentapi_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/internal/testcluster"
)

// view is what an agent knows from its stream: the tasks assigned, by ARN.
type view map[string]protocol.AssignedTask

// apply folds a message into the view, as the agent's reconciler does.
func (v view) apply(t *testing.T, m protocol.Assignment) {
	t.Helper()
	if m.Keepalive {
		return
	}
	if !m.Delta {
		clear(v)
	} else if len(m.Tasks) == 0 && len(m.Removed) == 0 {
		t.Errorf("empty delta at revision %d", m.Revision)
	}
	for _, at := range m.Tasks {
		v[at.Task.TaskARN] = at
	}
	for _, arn := range m.Removed {
		if _, ok := v[arn]; !ok {
			t.Errorf("delta removes %s, which the stream never sent", arn)
		}
		delete(v, arn)
	}
}

// desired is the view's tasks' desired statuses.
func (v view) desired() map[string]string {
	out := map[string]string{}
	for arn, at := range v {
		out[arn] = at.Task.DesiredStatus
	}
	return out
}

// freshView is what a newly connected agent learns: the first message.
func freshView(t *testing.T, a *testcluster.FakeAgent) view {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := view{}
	select {
	case m := <-a.Assignments(ctx):
		if m.Delta || m.Keepalive {
			t.Fatalf("first message is not a snapshot: %+v", m)
		}
		v.apply(t, m)
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot")
	}
	return v
}

// follower reads one stream into a view.
type follower struct {
	t    *testing.T
	msgs <-chan protocol.Assignment
	v    view
}

func follow(t *testing.T, a *testcluster.FakeAgent) *follower {
	return &follower{t: t, msgs: a.Assignments(context.Background()), v: view{}}
}

// next applies the next message that is not a keepalive and returns it.
func (f *follower) next() protocol.Assignment {
	f.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, open := <-f.msgs:
			if !open {
				f.t.Fatal("stream ended")
			}
			if m.Keepalive {
				continue
			}
			f.v.apply(f.t, m)
			return m
		case <-timeout:
			f.t.Fatal("no assignment")
		}
	}
}

// converge applies messages until the view equals a fresh snapshot's.
func (f *follower) converge(a *testcluster.FakeAgent, what string) {
	f.t.Helper()
	want := freshView(f.t, a).desired()
	deadline := time.Now().Add(10 * time.Second)
	for !maps.Equal(f.v.desired(), want) {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: stream's view %v, a fresh snapshot %v", what, f.v.desired(), want)
		}
		f.next()
	}
}

func arns(m protocol.Assignment) []string {
	var out []string
	for _, at := range m.Tasks {
		out = append(out, at.Task.TaskARN)
	}
	return out
}

// TestAssignments: a snapshot on connect, then deltas carrying new tasks
// whole, desired-status changes, and the removal of tasks reported
// STOPPED; the agent's own reports are not echoed. At every step the
// stream's view equals a fresh snapshot.
func TestAssignments(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	a := c.RegisterAgent(t, "c", testcluster.AgentOptions{})
	first := aws.ToString(runTask(t, api).Tasks[0].TaskArn)
	f := follow(t, a)
	m := f.next()
	if m.Delta || len(m.Tasks) != 1 || m.Tasks[0].Task.TaskARN != first || m.Tasks[0].TaskDefinition.Family != "app" || m.Revision == 0 {
		t.Fatalf("snapshot: %+v", m)
	}

	second := aws.ToString(runTask(t, api).Tasks[0].TaskArn)
	m = f.next()
	if !m.Delta || !slices.Equal(arns(m), []string{second}) || m.Tasks[0].TaskDefinition.Family != "app" || len(m.Removed) != 0 {
		t.Fatalf("delta for a new task: %+v", m)
	}
	f.converge(a, "after a placement")

	// The agent's RUNNING report changes lastStatus only: no delta. The
	// next one is the third task's.
	a.MustReport(report(first, "RUNNING"))
	third := aws.ToString(runTask(t, api).Tasks[0].TaskArn)
	if m = f.next(); !slices.Equal(arns(m), []string{third}) || len(m.Removed) != 0 {
		t.Fatalf("delta after a report and a placement: %+v", m)
	}

	if _, err := api.StopTask(context.Background(), &awsecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(first)}); err != nil {
		t.Fatal(err)
	}
	m = f.next()
	if !slices.Equal(arns(m), []string{first}) || m.Tasks[0].Task.DesiredStatus != "STOPPED" {
		t.Fatalf("delta for StopTask: %+v", m)
	}
	f.converge(a, "after StopTask")

	a.MustReport(report(first, "STOPPED"))
	if m = f.next(); len(m.Tasks) != 0 || !slices.Equal(m.Removed, []string{first}) {
		t.Fatalf("delta for a STOPPED report: %+v", m)
	}
	f.converge(a, "after the STOPPED report")
	if _, ok := f.v[first]; ok || len(f.v) != 2 {
		t.Errorf("view: %v", f.v.desired())
	}
}

// TestAssignmentsReconnect: an agent whose stream broke, and which missed
// changes meanwhile, learns the truth from its next connection's snapshot.
func TestAssignmentsReconnect(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	a := c.RegisterAgent(t, "c", testcluster.AgentOptions{})
	first := aws.ToString(runTask(t, api).Tasks[0].TaskArn)
	second := aws.ToString(runTask(t, api).Tasks[0].TaskArn)
	ctx, cancel := context.WithCancel(context.Background())
	v := view{}
	v.apply(t, <-a.Assignments(ctx))
	cancel()
	if len(v) != 2 {
		t.Fatalf("first view: %v", v.desired())
	}

	// Missed: the first task stops, a third is placed, the second is
	// asked to stop.
	a.MustReport(report(first, "STOPPED"))
	third := aws.ToString(runTask(t, api).Tasks[0].TaskArn)
	if _, err := api.StopTask(context.Background(), &awsecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(second)}); err != nil {
		t.Fatal(err)
	}

	f := follow(t, a)
	f.v = v
	if m := f.next(); m.Delta {
		t.Fatalf("first message after reconnecting is a delta: %+v", m)
	}
	want := map[string]string{second: "STOPPED", third: "RUNNING"}
	if got := f.v.desired(); !maps.Equal(got, want) {
		t.Errorf("after reconnecting: %v, want %v", got, want)
	}
}
