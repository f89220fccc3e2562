package ecs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/gantry-dev/gantry/internal/awsproto"
)

// The rules by which a task record moves: users ask for a stop
// (RequestStop), agents report what happened (ApplyStateChange). Both are
// pure: the store applies them inside a revision-guarded transaction.

// RequestStop asks for t to stop: desiredStatus STOPPED, the stop code and
// reason, stoppingAt. It reports false, changing nothing, when a stop was
// already requested (the first reason stands, as in ECS) or t is STOPPED.
func (t *Task) RequestStop(code TaskStopCode, reason string, at time.Time) bool {
	if t.DesiredStatus == TaskStatusStopped || t.LastStatus == TaskStatusStopped {
		return false
	}
	t.DesiredStatus = TaskStatusStopped
	t.StopCode = code
	t.StoppedReason = reason
	t.StoppingAt = awsproto.Timestamp{Time: at}
	t.Version++
	return true
}

// ErrBadStateChange marks a state change that can never apply: an unknown
// status or a container the task does not have. The agent has a bug.
var ErrBadStateChange = errors.New("bad state change")

// ApplyStateChange applies an agent's report (ECS's SubmitTaskStateChange
// with its ContainerStateChanges) to t at time at and reports whether t
// changed. A report that repeats what t already says changes nothing; one
// that t refuses returns why in ignored: it would move the task backwards,
// or the task is already STOPPED. (A container's report that would move
// it backwards is skipped on its own.) A malformed report is an error
// wrapping ErrBadStateChange. An empty status reports on containers only.
//
// When a task the user did not ask to stop stops on its own, its stop code
// is code, the one the agent that saw it stop reports, with the agent's
// reason or ECS's wording for the code ("Essential container in task
// exited"). Without a code, it is ECS's: TaskFailedToStart (with the
// agent's reason, e.g. "CannotPullContainerError: ...") if no container
// ever ran, else EssentialContainerExited. A stop the user asked for keeps
// its code and reason.
func (t *Task) ApplyStateChange(ch *SubmitTaskStateChangeRequest, code TaskStopCode, at time.Time) (changed bool, ignored string, err error) {
	if t.LastStatus == TaskStatusStopped {
		return false, "task is already STOPPED", nil
	}
	cur, _ := TaskStatusRank(t.LastStatus)
	next := cur
	if ch.Status != "" {
		r, ok := TaskStatusRank(ch.Status)
		if !ok {
			return false, "", fmt.Errorf("%w: unknown task status %q", ErrBadStateChange, ch.Status)
		}
		next = r
	}
	if code != "" && !code.Valid() {
		return false, "", fmt.Errorf("%w: unknown stop code %q", ErrBadStateChange, code)
	}
	if next < cur {
		return false, fmt.Sprintf("report would move the task backwards from %s to %s", t.LastStatus, ch.Status), nil
	}
	for i := range ch.Containers {
		if err := t.findContainer(ch.Containers[i].ContainerName); err != nil {
			return false, "", err
		}
		if _, ok := containerStatusRank[ch.Containers[i].Status]; !ok && ch.Containers[i].Status != "" {
			return false, "", fmt.Errorf("%w: unknown container status %q", ErrBadStateChange, ch.Containers[i].Status)
		}
	}

	for i := range ch.Containers {
		if t.applyContainerChange(&ch.Containers[i]) {
			changed = true
		}
	}
	if t.PullStartedAt.IsZero() && !ch.PullStartedAt.IsZero() {
		t.PullStartedAt = ch.PullStartedAt
		changed = true
	}
	if t.PullStoppedAt.IsZero() && !ch.PullStoppedAt.IsZero() {
		t.PullStoppedAt = ch.PullStoppedAt
		changed = true
	}
	if next > cur {
		t.advance(ch, code, next, at)
		changed = true
	}
	if changed {
		t.Version++
	}
	return changed, "", nil
}

func (t *Task) findContainer(name string) error {
	for i := range t.Containers {
		if t.Containers[i].Name == name {
			return nil
		}
	}
	return fmt.Errorf("%w: the task has no container named %q", ErrBadStateChange, name)
}

// applyContainerChange merges one container's report; a container never
// moves backwards either.
func (t *Task) applyContainerChange(cc *ContainerStateChange) bool {
	var c *Container
	for i := range t.Containers {
		if t.Containers[i].Name == cc.ContainerName {
			c = &t.Containers[i]
		}
	}
	if cc.Status != "" && containerStatusRank[cc.Status] < containerStatusRank[c.LastStatus] {
		return false
	}
	before, _ := json.Marshal(c) // by value: pointers compare by what they point to
	if cc.Status != "" {
		c.LastStatus = cc.Status
	}
	if cc.RuntimeID != "" {
		c.RuntimeID = cc.RuntimeID
	}
	if cc.ImageDigest != "" {
		c.ImageDigest = cc.ImageDigest
	}
	if cc.ExitCode != nil {
		c.ExitCode = cc.ExitCode
	}
	if cc.Reason != "" {
		c.Reason = truncateUTF8(cc.Reason, 1024) // "A short (1024 max characters) human-readable string"
	}
	if cc.NetworkBindings != nil {
		c.NetworkBindings = cc.NetworkBindings
	}
	after, _ := json.Marshal(c)
	return !bytes.Equal(before, after)
}

// advance moves lastStatus forward to the state ranked next and sets the
// timestamps and stop details that go with it.
func (t *Task) advance(ch *SubmitTaskStateChangeRequest, code TaskStopCode, next int, at time.Time) {
	ts := awsproto.Timestamp{Time: at}
	t.LastStatus = ch.Status
	running, _ := TaskStatusRank(TaskStatusRunning)
	stopping, _ := TaskStatusRank(TaskStatusDeactivating)
	if next == running && t.StartedAt.IsZero() {
		t.StartedAt = ts
	}
	if next < stopping {
		return
	}
	if t.DesiredStatus != TaskStatusStopped {
		// Stopping on its own: the user did not ask for it.
		t.DesiredStatus = TaskStatusStopped
		switch {
		case code != "":
			t.StopCode = code
			t.StoppedReason = firstNonEmptyString(ch.Reason, stoppedReasonFor(code))
		case t.failedToStart():
			t.StopCode = TaskStopCodeTaskFailedToStart
			t.StoppedReason = firstNonEmptyString(ch.Reason, t.containerReason(), StoppedReasonFailedToStart)
		default:
			t.StopCode = TaskStopCodeEssentialContainerExited
			t.StoppedReason = StoppedReasonEssentialExited
		}
		t.StoppedReason = truncateUTF8(t.StoppedReason, 255)
	}
	if t.StoppingAt.IsZero() {
		t.StoppingAt = ts
	}
	if ch.Status != TaskStatusStopped {
		return
	}
	t.StoppedAt = ts
	t.ExecutionStoppedAt = ch.ExecutionStoppedAt
	if t.ExecutionStoppedAt.IsZero() {
		t.ExecutionStoppedAt = ts
	}
	for i := range t.Containers {
		t.Containers[i].LastStatus = ContainerStatusStopped
	}
}

// failedToStart: the task never reached RUNNING and no container exited
// (one that exited did run).
func (t *Task) failedToStart() bool {
	if !t.StartedAt.IsZero() {
		return false
	}
	for _, c := range t.Containers {
		if c.ExitCode != nil {
			return false
		}
	}
	return true
}

// stoppedReasonFor is ECS's stoppedReason for a stop code when the agent
// gives none.
func stoppedReasonFor(code TaskStopCode) string {
	switch code {
	case TaskStopCodeEssentialContainerExited:
		return StoppedReasonEssentialExited
	case TaskStopCodeTaskFailedToStart:
		return StoppedReasonFailedToStart
	case TaskStopCodeUserInitiated:
		return StoppedReasonUser
	}
	return string(code)
}

func (t *Task) containerReason() string {
	for _, c := range t.Containers {
		if c.Reason != "" {
			return c.Reason
		}
	}
	return ""
}

func firstNonEmptyString(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
