package ecs

import (
	"errors"
	"strconv"
	"strings"
)

// Task definition limits (ECS service quotas and API reference; see
// docs/task-definitions.md).
const (
	MaxContainerDefinitions  = 10        // "Containers per task definition"
	MaxTaskDefinitionBytes   = 64 << 10  // "Task definition size": 64 KiB
	MaxFamilyRevisions       = 1_000_000 // "Revisions per task definition family"
	MaxDeleteTaskDefinitions = 10        // DeleteTaskDefinitions: "up to 10"
	MaxPlacementConstraints  = 10        // per task definition
)

// TaskDefinitionRecord is one registered revision as the store keeps it: the
// document DescribeTaskDefinition returns, plus the tags ECS returns beside it
// (DescribeTaskDefinitionResponse.tags, not a member of TaskDefinition).
type TaskDefinitionRecord struct {
	TaskDefinition
	Tags []Tag `json:"tags,omitzero"`
}

// TaskDefinitionARN is the ARN of one revision:
// arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>.
func (s Scope) TaskDefinitionARN(family string, revision int32) string {
	return s.ARN("task-definition", family+":"+strconv.Itoa(int(revision)))
}

// TaskDefinitionRef is a parsed task definition reference. Revision is zero
// when the reference names only a family ("the latest ACTIVE revision").
type TaskDefinitionRef struct {
	Family   string
	Revision int32
}

// ErrNoSuchTaskDefinition reports a reference that cannot name a task
// definition of this scope: an ARN of another kind, region or account, or a
// family name ECS would never have registered. Callers answer it with their
// action's "does not exist" error.
var ErrNoSuchTaskDefinition = errors.New("no such task definition")

// ParseTaskDefinitionRef resolves "family", "family:revision" or a task
// definition ARN of this scope. A revision that is not a positive number is
// ECS's ClientException "Invalid revision number. Number: <text>" (what ECS
// answers to the common mistake "family:latest").
func (s Scope) ParseTaskDefinitionRef(ref string) (TaskDefinitionRef, error) {
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		a, ok := ParseARN(ref)
		if !ok || a.Service != "ecs" || a.Kind != "task-definition" || a.Partition != s.Partition ||
			a.Region != s.Region || a.AccountID != s.AccountID {
			return TaskDefinitionRef{}, ErrNoSuchTaskDefinition
		}
		name = a.Resource
	}
	family, rev, hasRev := strings.Cut(name, ":")
	if !validName(family, 255) {
		return TaskDefinitionRef{}, ErrNoSuchTaskDefinition
	}
	if !hasRev {
		return TaskDefinitionRef{Family: family}, nil
	}
	n, err := strconv.ParseInt(rev, 10, 32)
	if err != nil || n < 1 || rev[0] == '+' {
		return TaskDefinitionRef{}, ClientError("Invalid revision number. Number: %s", rev)
	}
	return TaskDefinitionRef{Family: family, Revision: int32(n)}, nil
}
