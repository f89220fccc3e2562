package ecsapi

import (
	"context"
	"errors"
	"strings"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/state"
)

func (a *API) registerTasks() {
	a.handle("RunTask", op(a.runTask))
	a.handle("StartTask", op(a.startTask))
	a.handle("StopTask", op(a.stopTask))
	a.handle("DescribeTasks", op(a.describeTasks))
	a.handle("ListTasks", op(a.listTasks))
}

func errTaskNotFound() error {
	return ecs.InvalidParameter("The referenced task was not found.")
}

// stopTask asks for a task to stop: desiredStatus STOPPED, stopCode
// UserInitiated, the reason (ECS's "Task stopped by user" when none is
// given) and stoppingAt. The agent stops the containers and reports the
// task STOPPED, which frees what it held. Stopping a task already asked
// to stop, or STOPPED, answers with it unchanged.
func (a *API) stopTask(ctx context.Context, in *ecs.StopTaskRequest) (*ecs.StopTaskResponse, error) {
	if len(in.Reason) > 255 {
		return nil, ecs.InvalidParameter("reason can be at most 255 characters long.")
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	id, ok := a.scope.ParseTaskRef(c.ClusterName, in.Task)
	if !ok {
		return nil, errTaskNotFound()
	}
	reason := in.Reason
	if reason == "" {
		reason = ecs.StoppedReasonUser
	}
	at := now()
	t, err := a.store.UpdateTask(ctx, c.ClusterName, id, func(t *state.TaskRecord) (bool, error) {
		return t.RequestStop(ecs.TaskStopCodeUserInitiated, reason, at), nil
	})
	if errors.Is(err, state.ErrNotFound) {
		return nil, errTaskNotFound()
	}
	if err != nil {
		return nil, err
	}
	v := taskView(t, true)
	return &ecs.StopTaskResponse{Task: &v}, nil
}

func (a *API) describeTasks(ctx context.Context, in *ecs.DescribeTasksRequest) (*ecs.DescribeTasksResponse, error) {
	if len(in.Tasks) == 0 || len(in.Tasks) > 100 {
		return nil, ecs.InvalidParameter("tasks must contain between 1 and 100 tasks.")
	}
	cluster, err := a.anyCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	tags := false
	for _, f := range in.Include {
		tags = tags || f == ecs.TaskFieldTags
	}
	out := &ecs.DescribeTasksResponse{Tasks: []ecs.Task{}, Failures: []ecs.Failure{}}
	for _, ref := range in.Tasks {
		id, ok := a.scope.ParseTaskRef(cluster, ref)
		var t *state.TaskRecord
		if ok {
			t, err = a.store.GetTask(ctx, cluster, id)
		}
		if !ok || errors.Is(err, state.ErrNotFound) {
			arn := ref
			if ecs.ValidID(ref) {
				arn = a.scope.TaskARN(cluster, ref)
			}
			out.Failures = append(out.Failures, ecs.Failure{ARN: arn, Reason: "MISSING"})
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Tasks = append(out.Tasks, taskView(t, tags))
	}
	return out, nil
}

// listTasks lists task ARNs in ID order. desiredStatus RUNNING (the
// default) lists tasks not asked to stop; STOPPED lists those being
// stopped and those stopped within the last hour; PENDING lists nothing
// ("Amazon ECS never sets the desired status of a task to that value").
func (a *API) listTasks(ctx context.Context, in *ecs.ListTasksRequest) (*ecs.ListTasksResponse, error) {
	limit, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken("ListTasks", in.NextToken)
	if err != nil {
		return nil, err
	}
	if after != "" && !ecs.ValidID(after) {
		return nil, ecs.InvalidParameter("Invalid nextToken: it was not returned by ListTasks.")
	}
	c, err := a.activeCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListTasksResponse{TaskARNs: []string{}}
	desired := string(in.DesiredStatus)
	if desired == "" {
		desired = ecs.TaskStatusRunning
	}
	if desired == ecs.TaskStatusPending || in.DaemonName != "" ||
		(in.LaunchType != "" && in.LaunchType != ecs.LaunchTypeEC2) {
		return out, nil // Gantry has no daemons and runs only EC2 tasks
	}
	var instance string
	if in.ContainerInstance != "" {
		id, ok := a.scope.ParseContainerInstanceRef(c.ClusterName, in.ContainerInstance)
		if !ok {
			return nil, ecs.InvalidParameter("The referenced container instance was not found.")
		}
		instance = id
	}
	if in.ServiceName != "" {
		ok, err := a.store.ServiceExists(ctx, c.ClusterName, in.ServiceName)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ecs.Errorf(ecs.ErrCodeServiceNotFoundException, "Service not found.")
		}
	}
	keep := func(t *state.TaskRecord) bool {
		return t.DesiredStatus == desired &&
			(in.Family == "" || taskFamily(t.TaskDefinitionARN) == in.Family) &&
			(in.StartedBy == "" || t.StartedBy == in.StartedBy) &&
			(in.ServiceName == "" || t.Group == "service:"+in.ServiceName) &&
			(instance == "" || t.InstanceID() == instance)
	}
	tasks, next, err := a.store.ListTasks(ctx, c.ClusterName, true, desired == ecs.TaskStatusStopped, after, limit, keep)
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		out.TaskARNs = append(out.TaskARNs, t.TaskARN)
	}
	out.NextToken = encodeToken("ListTasks", next)
	return out, nil
}

// taskFamily is the family of a task definition ARN (".../<family>:<revision>").
func taskFamily(arn string) string {
	name := arn[strings.LastIndexByte(arn, '/')+1:]
	family, _, _ := strings.Cut(name, ":")
	return family
}

// taskTagger tags tasks, addressed as task/<cluster>/<id>.
func (a *API) taskTagger() tagger {
	parse := func(resource string) (cluster, id string, err error) {
		cluster, id, ok := strings.Cut(resource, "/")
		if !ok || !ecs.ValidID(id) {
			return "", "", ecs.InvalidParameter("The ARN provided is invalid: a task ARN ends in task/<cluster>/<id>.")
		}
		return cluster, id, nil
	}
	return tagger{
		get: func(ctx context.Context, resource string) ([]ecs.Tag, error) {
			cluster, id, err := parse(resource)
			if err != nil {
				return nil, err
			}
			t, err := a.store.GetTask(ctx, cluster, id)
			if err != nil {
				return nil, err
			}
			return t.Tags, nil
		},
		update: func(ctx context.Context, resource string, fn func([]ecs.Tag) []ecs.Tag) error {
			cluster, id, err := parse(resource)
			if err != nil {
				return err
			}
			_, err = a.store.UpdateTask(ctx, cluster, id, func(t *state.TaskRecord) (bool, error) {
				t.Tags = fn(t.Tags)
				return true, ecs.ValidateTags(t.Tags)
			})
			return err
		},
	}
}

// instanceTagger tags container instances, addressed as
// container-instance/<cluster>/<id>.
func (a *API) instanceTagger() tagger {
	parse := func(resource string) (cluster, id string, err error) {
		cluster, id, ok := strings.Cut(resource, "/")
		if !ok || !ecs.ValidID(id) {
			return "", "", ecs.InvalidParameter("The ARN provided is invalid: a container instance ARN ends in container-instance/<cluster>/<id>.")
		}
		return cluster, id, nil
	}
	return tagger{
		get: func(ctx context.Context, resource string) ([]ecs.Tag, error) {
			cluster, id, err := parse(resource)
			if err != nil {
				return nil, err
			}
			r, _, err := a.store.GetInstance(ctx, cluster, id)
			if err != nil {
				return nil, err
			}
			return r.Tags, nil
		},
		update: func(ctx context.Context, resource string, fn func([]ecs.Tag) []ecs.Tag) error {
			cluster, id, err := parse(resource)
			if err != nil {
				return err
			}
			_, err = a.store.UpdateInstance(ctx, cluster, id, func(r *state.InstanceRecord) error {
				r.Tags = fn(r.Tags)
				return ecs.ValidateTags(r.Tags)
			})
			return err
		},
	}
}
