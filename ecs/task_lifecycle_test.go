package ecs

import (
	"errors"
	"testing"
	"time"
)

func newTestTask() *Task {
	return &Task{
		LastStatus: TaskStatusPending, DesiredStatus: TaskStatusRunning, Version: 1,
		Containers: []Container{{Name: "a", LastStatus: ContainerStatusPending}, {Name: "b", LastStatus: ContainerStatusPending}},
	}
}

func TestApplyStateChange(t *testing.T) {
	at := time.Unix(1700000000, 0)
	exit := int32(2)
	for _, tc := range []struct {
		name    string
		before  func(*Task)
		change  SubmitTaskStateChangeRequest
		code    TaskStopCode
		changed bool
		ignored bool
		err     bool
		check   func(*testing.T, *Task)
	}{
		{name: "Running", change: SubmitTaskStateChangeRequest{Status: "RUNNING", Containers: []ContainerStateChange{{ContainerName: "a", Status: "RUNNING", RuntimeID: "r1"}}},
			changed: true, check: func(t *testing.T, k *Task) {
				if k.LastStatus != "RUNNING" || k.StartedAt.IsZero() || k.Containers[0].RuntimeID != "r1" || k.Version != 2 || k.DesiredStatus != "RUNNING" {
					t.Errorf("%+v", k)
				}
			}},
		{name: "Repeat", before: func(k *Task) { k.LastStatus = "RUNNING" }, change: SubmitTaskStateChangeRequest{Status: "RUNNING"}, check: func(t *testing.T, k *Task) {
			if k.Version != 1 {
				t.Errorf("version moved: %d", k.Version)
			}
		}},
		{name: "RepeatContainers", before: func(k *Task) {
			k.LastStatus, k.Containers[0].LastStatus, k.Containers[0].ExitCode = "RUNNING", "STOPPED", &exit
			k.Containers[0].NetworkBindings = []NetworkBinding{{HostPort: &exit}}
		}, change: SubmitTaskStateChangeRequest{Status: "RUNNING", Containers: []ContainerStateChange{{ContainerName: "a", Status: "STOPPED",
			ExitCode: new(int32(2)), NetworkBindings: []NetworkBinding{{HostPort: new(int32(2))}}}}}},
		{name: "Backwards", before: func(k *Task) { k.LastStatus = "RUNNING" }, change: SubmitTaskStateChangeRequest{Status: "PENDING"}, ignored: true},
		{name: "AfterStopped", before: func(k *Task) { k.LastStatus = "STOPPED" }, change: SubmitTaskStateChangeRequest{Status: "STOPPED"}, ignored: true},
		{name: "UnknownStatus", change: SubmitTaskStateChangeRequest{Status: "NAPPING"}, err: true},
		{name: "UnknownContainer", change: SubmitTaskStateChangeRequest{Containers: []ContainerStateChange{{ContainerName: "z", Status: "RUNNING"}}}, err: true},
		{name: "UnknownStopCode", change: SubmitTaskStateChangeRequest{Status: "STOPPED"}, code: "Bored", err: true},
		{name: "ContainerNeverBackwards", before: func(k *Task) { k.Containers[0].LastStatus = "STOPPED" },
			change:  SubmitTaskStateChangeRequest{Containers: []ContainerStateChange{{ContainerName: "a", Status: "RUNNING"}, {ContainerName: "b", Status: "RUNNING"}}},
			changed: true, check: func(t *testing.T, k *Task) {
				if k.Containers[0].LastStatus != "STOPPED" || k.Containers[1].LastStatus != "RUNNING" {
					t.Errorf("%+v", k.Containers)
				}
			}},
		{name: "EssentialExit", before: func(k *Task) { k.LastStatus, k.StartedAt.Time = "RUNNING", at },
			change:  SubmitTaskStateChangeRequest{Status: "STOPPED", Containers: []ContainerStateChange{{ContainerName: "a", Status: "STOPPED", ExitCode: &exit}}},
			changed: true, check: func(t *testing.T, k *Task) {
				if k.StopCode != TaskStopCodeEssentialContainerExited || k.StoppedReason != StoppedReasonEssentialExited || k.DesiredStatus != "STOPPED" ||
					k.StoppingAt.IsZero() || k.StoppedAt.IsZero() || k.ExecutionStoppedAt.IsZero() || k.Containers[1].LastStatus != "STOPPED" {
					t.Errorf("%+v", k)
				}
			}},
		{name: "FailedToStart", change: SubmitTaskStateChangeRequest{Status: "STOPPED", Reason: "CannotPullContainerError: no such image"}, changed: true,
			check: func(t *testing.T, k *Task) {
				if k.StopCode != TaskStopCodeTaskFailedToStart || k.StoppedReason != "CannotPullContainerError: no such image" {
					t.Errorf("%+v", k)
				}
			}},
		{name: "ExitedBeforeRunningReport", change: SubmitTaskStateChangeRequest{Status: "STOPPED", Containers: []ContainerStateChange{{ContainerName: "a", Status: "STOPPED", ExitCode: &exit}}},
			changed: true, check: func(t *testing.T, k *Task) {
				if k.StopCode != TaskStopCodeEssentialContainerExited {
					t.Errorf("%+v", k)
				}
			}},
		{name: "AgentCode", change: SubmitTaskStateChangeRequest{Status: "STOPPING"}, code: TaskStopCodeEssentialContainerExited, changed: true,
			check: func(t *testing.T, k *Task) {
				if k.StopCode != TaskStopCodeEssentialContainerExited || k.StoppedReason != StoppedReasonEssentialExited || !k.StoppedAt.IsZero() || k.StoppingAt.IsZero() {
					t.Errorf("%+v", k)
				}
			}},
		{name: "UserStopKeepsReason", before: func(k *Task) { k.RequestStop(TaskStopCodeUserInitiated, "bye", at) },
			change: SubmitTaskStateChangeRequest{Status: "STOPPED", Reason: "agent says"}, code: TaskStopCodeEssentialContainerExited, changed: true,
			check: func(t *testing.T, k *Task) {
				if k.StopCode != TaskStopCodeUserInitiated || k.StoppedReason != "bye" || !k.StoppingAt.Equal(at) {
					t.Errorf("%+v", k)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newTestTask()
			if tc.before != nil {
				tc.before(k)
				k.Version = 1
			}
			changed, ignored, err := k.ApplyStateChange(&tc.change, tc.code, at.Add(time.Second))
			if (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrBadStateChange)) {
				t.Fatalf("err = %v", err)
			}
			if changed != tc.changed || (ignored != "") != tc.ignored {
				t.Fatalf("changed %v ignored %q", changed, ignored)
			}
			if tc.check != nil {
				tc.check(t, k)
			}
		})
	}
}

func TestRequestStop(t *testing.T) {
	k := newTestTask()
	at := time.Unix(1700000000, 0)
	if !k.RequestStop(TaskStopCodeUserInitiated, StoppedReasonUser, at) || k.DesiredStatus != "STOPPED" || k.Version != 2 || !k.StoppingAt.Equal(at) {
		t.Fatalf("%+v", k)
	}
	if k.RequestStop(TaskStopCodeUserInitiated, "again", at.Add(time.Hour)) || k.StoppedReason != StoppedReasonUser {
		t.Errorf("second stop changed the task: %+v", k)
	}
}

func TestParseRefs(t *testing.T) {
	s := Scope{Partition: "aws", Region: "us-east-1", AccountID: "123456789012"}
	id := "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		ref string
		ok  bool
	}{
		{id, true},
		{s.TaskARN("c", id), true},
		{s.TaskARN("other", id), false},
		{s.ContainerInstanceARN("c", id), false},
		{"arn:aws:ecs:eu-west-1:123456789012:task/c/" + id, false},
		{"0123", false},
		{"arn:aws:ecs:us-east-1:123456789012:task/" + id, false}, // the old ARN format has no cluster
	} {
		got, ok := s.ParseTaskRef("c", tc.ref)
		if ok != tc.ok || (ok && got != id) {
			t.Errorf("ParseTaskRef(%q) = %q %v", tc.ref, got, ok)
		}
	}
	if EC2InstanceID(id) != "i-0123456789abcdef0" {
		t.Errorf("EC2InstanceID = %s", EC2InstanceID(id))
	}
}
