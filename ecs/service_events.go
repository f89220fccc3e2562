package ecs

import (
	"fmt"
	"strings"
)

// Service event messages and deployment reasons in ECS's words
// ("Amazon ECS service event messages"), so tools that read a service's
// events, and people who know ECS's, find what they expect.

// MaxServiceEvents is how many events a service keeps, newest first (the
// console and DescribeServices show "the 100 most recent events").
const MaxServiceEvents = 100

// EventSteadyState: "(service web) has reached a steady state."
func EventSteadyState(service string) string {
	return fmt.Sprintf("(service %s) has reached a steady state.", service)
}

// EventStartedTasks: "(service web) has started 2 tasks: (task a) (task b)."
func EventStartedTasks(service string, taskIDs []string) string {
	return fmt.Sprintf("(service %s) has started %d tasks: %s.", service, len(taskIDs), taskList(taskIDs))
}

// EventStoppedTasks: "(service web) has stopped 2 running tasks: (task a)
// (task b)." (or "pending tasks" for tasks that never ran).
func EventStoppedTasks(service, kind string, taskIDs []string) string {
	return fmt.Sprintf("(service %s) has stopped %d %s tasks: %s.", service, len(taskIDs), kind, taskList(taskIDs))
}

// EventDeploymentCompleted: "(service web) (deployment ecs-svc/1) deployment completed."
func EventDeploymentCompleted(service, deployment string) string {
	return fmt.Sprintf("(service %s) (deployment %s) deployment completed.", service, deployment)
}

// EventDeploymentFailed: "(service web) (deployment ecs-svc/1) deployment
// failed: tasks failed to start."
func EventDeploymentFailed(service, deployment string) string {
	return fmt.Sprintf("(service %s) (deployment %s) deployment failed: tasks failed to start.", service, deployment)
}

// EventRollingBack: "(service web) rolling back to deployment ecs-svc/1."
func EventRollingBack(service, deployment string) string {
	return fmt.Sprintf("(service %s) rolling back to deployment %s.", service, deployment)
}

// EventTaskUnhealthy: "(service web) (task a) failed container health checks."
func EventTaskUnhealthy(service, taskID string) string {
	return fmt.Sprintf("(service %s) (task %s) failed container health checks.", service, taskID)
}

// EventThrottled is ECS's message when tasks keep failing to start and the
// scheduler slows down; Gantry adds how long it waits.
func EventThrottled(service string, wait string) string {
	return fmt.Sprintf("(service %s) is unable to consistently start tasks successfully. The next attempt is in %s.", service, wait)
}

// EventUnableToPlace is ECS's placement failure event: "(service web) was
// unable to place a task because no container instance met all of its
// requirements. The closest matching (container-instance 1234) has
// insufficient memory available. For more information, see the
// Troubleshooting section of the Amazon ECS Developer Guide."
func EventUnableToPlace(service, closest, reason string) string {
	const tail = " For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
	head := fmt.Sprintf("(service %s) was unable to place a task because no container instance met all of its requirements.", service)
	if closest == "" {
		return head + " Reason: No Container Instances were found in your cluster." + tail
	}
	return fmt.Sprintf("%s The closest matching (container-instance %s) %s.%s", head, closest, placementReason(reason), tail)
}

// EventDeploymentBlocked: the deployment configuration allows neither
// starting nor stopping a task.
func EventDeploymentBlocked(service string) string {
	return fmt.Sprintf("(service %s) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.", service)
}

// placementReason says a scheduler failure reason as ECS's events do.
func placementReason(r string) string {
	switch r {
	case "RESOURCE:CPU":
		return "has insufficient CPU units available"
	case "RESOURCE:MEMORY":
		return "has insufficient memory available"
	case "RESOURCE:PORTS", "RESOURCE:PORTS_UDP":
		return "is already using a port required by your task"
	case "ATTRIBUTE":
		return "is missing an attribute required by your task"
	case "AGENT":
		return `encountered error "AGENT"`
	case InstanceStatusDraining:
		return "is draining"
	}
	return fmt.Sprintf("encountered error %q", r)
}

func taskList(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = "(task " + id + ")"
	}
	return strings.Join(parts, " ")
}

// Deployment rolloutStateReason values.
func DeploymentInProgressReason(id string) string { return "ECS deployment " + id + " in progress." }
func DeploymentCompletedReason(id string) string  { return "ECS deployment " + id + " completed." }

// DeploymentFailedReason is the circuit breaker's reason on the deployment
// it failed.
const DeploymentFailedReason = "ECS deployment circuit breaker: tasks failed to start."

// DeploymentRollbackReason is the reason on the deployment a rollback
// returns to.
func DeploymentRollbackReason(failed string) string {
	return "ECS deployment circuit breaker: rolling back from deployment " + failed + "."
}

// Stopped reasons of tasks the service scheduler stops.
const (
	StoppedReasonUnhealthy = "Task failed container health checks"
	// StoppedReasonInstanceLost: the task's agent stopped heartbeating, so
	// the service started a replacement elsewhere; the agent stops the task
	// if it comes back.
	StoppedReasonInstanceLost = "Task stopped because its container instance's agent stopped responding"
)

// StoppedReasonScaling is ECS's reason on a task a deployment or scale-in
// stops: "Scaling activity initiated by (deployment ecs-svc/1)".
func StoppedReasonScaling(deployment string) string {
	return "Scaling activity initiated by (deployment " + deployment + ")"
}
