package ecs

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Task lifecycle states, shared by lastStatus and desiredStatus, in the
// order ECS moves a task through them ("Amazon ECS task lifecycle"). A task
// never moves backwards. EC2 tasks in bridge or host mode skip the states
// that attach and detach network interfaces and load balancers
// (PROVISIONING, ACTIVATING, DEACTIVATING, DEPROVISIONING), but an agent
// may report any of them.
const (
	TaskStatusProvisioning   = "PROVISIONING"
	TaskStatusPending        = "PENDING"
	TaskStatusActivating     = "ACTIVATING"
	TaskStatusRunning        = "RUNNING"
	TaskStatusDeactivating   = "DEACTIVATING"
	TaskStatusStopping       = "STOPPING"
	TaskStatusDeprovisioning = "DEPROVISIONING"
	TaskStatusStopped        = "STOPPED"
)

var taskStatusRank = map[string]int{
	TaskStatusProvisioning:   0,
	TaskStatusPending:        1,
	TaskStatusActivating:     2,
	TaskStatusRunning:        3,
	TaskStatusDeactivating:   4,
	TaskStatusStopping:       5,
	TaskStatusDeprovisioning: 6,
	TaskStatusStopped:        7,
}

// TaskStatusRank orders task states; ok is false for an unknown state.
func TaskStatusRank(s string) (rank int, ok bool) {
	rank, ok = taskStatusRank[s]
	return rank, ok
}

// Container states as DescribeTasks reports them.
const (
	ContainerStatusPending = "PENDING"
	ContainerStatusRunning = "RUNNING"
	ContainerStatusStopped = "STOPPED"
)

var containerStatusRank = map[string]int{
	ContainerStatusPending: 0,
	ContainerStatusRunning: 1,
	ContainerStatusStopped: 2,
}

// Stopped reasons in ECS's words (DescribeTasks stoppedReason).
const (
	StoppedReasonUser                 = "Task stopped by user"
	StoppedReasonEssentialExited      = "Essential container in task exited"
	StoppedReasonFailedToStart        = "Task failed to start"
	StoppedReasonInstanceDeregistered = "Container instance deregistration forced by user"
)

// NewID returns a random resource ID in ECS's form: 32 lowercase
// hexadecimal characters (task and container instance IDs).
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidID reports whether s is an ID in NewID's form.
func ValidID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// TaskARN is arn:aws:ecs:<region>:<account>:task/<cluster>/<id>, ECS's
// long ARN format.
func (s Scope) TaskARN(cluster, id string) string { return s.ARN("task", cluster+"/"+id) }

// ContainerInstanceARN is .../container-instance/<cluster>/<id>.
func (s Scope) ContainerInstanceARN(cluster, id string) string {
	return s.ARN("container-instance", cluster+"/"+id)
}

// ContainerARN is .../container/<cluster>/<task id>/<container id>, as ECS
// names the containers of a task.
func (s Scope) ContainerARN(cluster, taskID, containerID string) string {
	return s.ARN("container", cluster+"/"+taskID+"/"+containerID)
}

// ParseTaskRef resolves a task reference in cluster: an ID or a task ARN
// of this scope and cluster. It reports false for anything else, which
// callers treat as a task that does not exist.
func (s Scope) ParseTaskRef(cluster, ref string) (string, bool) {
	return s.parseClusterScoped("task", cluster, ref)
}

// ParseContainerInstanceRef resolves a container instance ID or ARN in
// cluster, as ParseTaskRef does for tasks.
func (s Scope) ParseContainerInstanceRef(cluster, ref string) (string, bool) {
	return s.parseClusterScoped("container-instance", cluster, ref)
}

func (s Scope) parseClusterScoped(kind, cluster, ref string) (string, bool) {
	id := ref
	if strings.HasPrefix(ref, "arn:") {
		a, ok := ParseARN(ref)
		if !ok || a.Service != "ecs" || a.Kind != kind || a.Partition != s.Partition || a.Region != s.Region || a.AccountID != s.AccountID {
			return "", false
		}
		c, rest, ok := strings.Cut(a.Resource, "/")
		if !ok || c != cluster {
			return "", false
		}
		id = rest
	}
	return id, ValidID(id)
}

// EC2InstanceID is the ec2InstanceId Gantry reports for a container
// instance: "i-" and the first 17 hexadecimal characters of its ID, the
// shape of an EC2 instance ID, so tools that expect one keep working.
func EC2InstanceID(instanceID string) string {
	if len(instanceID) < 17 {
		return "i-" + instanceID
	}
	return "i-" + instanceID[:17]
}
