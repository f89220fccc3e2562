// Package protocol is the contract between the control plane and its node
// agents: paths, authentication, and message shapes. Bodies reuse ECS's own
// types (ContainerInstance, Task, TaskDefinition, SubmitTaskStateChange,
// ContainerStateChange) so an agent report reads like the ECS agent's.
// See docs/agent-protocol.md.
//
// The protocol shares the API's port under PathPrefix. Agents never talk to
// etcd; the server is the only writer of instance and task records, and it
// checks that an agent reports only on tasks placed on its own instance.
package protocol

import (
	"time"

	"github.com/gantry-dev/gantry/ecs"
)

// PathPrefix is where agent endpoints live on the control plane's port.
const PathPrefix = "/agent/v1/"

// Endpoints. Every request carries "Authorization: Bearer <token>": the join
// token for Register, the instance token Register returned for the others.
const (
	PathRegister    = PathPrefix + "register"     // POST RegisterRequest -> RegisterResponse
	PathHeartbeat   = PathPrefix + "heartbeat"    // POST HeartbeatRequest -> HeartbeatResponse
	PathAssignments = PathPrefix + "assignments"  // GET -> stream of Assignments (NDJSON)
	PathTaskState   = PathPrefix + "task-state"   // POST TaskStateChange -> TaskStateResponse
	PathLogRequests = PathPrefix + "log-requests" // GET -> stream of LogRequests (NDJSON)
	PathLogs        = PathPrefix + "logs/"        // POST PathLogs + LogRequest.ID: the container's output as the body
)

// RegisterRequest registers a container instance, or re-registers the one
// the agent registered before (ContainerInstanceARN + InstanceToken from its
// data dir), which keeps its ARN, its tasks and its token.
type RegisterRequest struct {
	Cluster              string `json:"cluster"`
	ContainerInstanceARN string `json:"containerInstanceArn,omitempty"`
	InstanceToken        string `json:"instanceToken,omitempty"`
	// Hostname is reported as the instance's ec2InstanceId-like identifier
	// ("<hostname>" is not unique across agents on one host; the server
	// assigns the instance ID).
	Hostname string `json:"hostname,omitempty"`
	// Resources are the registered resources: CPU (1024 per core), MEMORY
	// (MiB, minus a reserve), PORTS and PORTS_UDP (reserved ports, as
	// stringSetValue), exactly as RegisterContainerInstance takes them.
	Resources []ecs.Resource `json:"totalResources"`
	// Attributes include the built-in ecs.* ones (os-type, cpu-architecture,
	// availability-zone, instance-type, capability.*) and --attribute flags.
	Attributes  []ecs.Attribute `json:"attributes,omitzero"`
	VersionInfo ecs.VersionInfo `json:"versionInfo"`
}

// RegisterResponse carries the instance as DescribeContainerInstances shows
// it, the token for all later calls, and how often to heartbeat.
type RegisterResponse struct {
	ContainerInstance ecs.ContainerInstance `json:"containerInstance"`
	InstanceToken     string                `json:"instanceToken"`
	// HeartbeatIntervalMillis: the server marks the agent disconnected after
	// missing heartbeats for HeartbeatTimeoutMillis.
	HeartbeatIntervalMillis int64 `json:"heartbeatIntervalMillis"`
	HeartbeatTimeoutMillis  int64 `json:"heartbeatTimeoutMillis"`
}

// HeartbeatRequest says the agent is alive.
type HeartbeatRequest struct{}

// HeartbeatResponse tells the agent its instance's status; an agent whose
// instance was deregistered stops its tasks and exits.
type HeartbeatResponse struct {
	Status string `json:"status"` // ACTIVE, DRAINING, INACTIVE (deregistered)
}

// Assignment is one message of the assignments stream. The first message
// of a connection is a snapshot: the complete set of tasks placed on this
// instance whose records are not yet STOPPED, with what the agent needs to
// run them; it replaces whatever the agent knew, so a reconnecting agent
// needs nothing but that message. Every later message is a delta
// (Delta=true): Tasks holds the tasks that are new to the stream or whose
// desiredStatus changed, each complete and replacing the agent's copy (by
// task ARN), and Removed the ARNs of tasks whose records are now STOPPED.
// A change of lastStatus alone (the agent's own report) is not echoed. The
// server may send a snapshot again at any time (after its watch broke);
// the agent treats it as the truth. A keepalive (Keepalive=true, no tasks)
// comes at least every 15 s so proxies and the agent can tell a dead
// stream from a quiet one.
type Assignment struct {
	Revision  int64          `json:"revision"` // etcd revision the message reflects
	Tasks     []AssignedTask `json:"tasks"`
	Delta     bool           `json:"delta,omitempty"`
	Removed   []string       `json:"removed,omitempty"` // deltas only: task ARNs
	Keepalive bool           `json:"keepalive,omitempty"`
}

// AssignedTask is a task with its task definition inlined (already resolved
// to the exact revision) and its overrides.
type AssignedTask struct {
	Task           ecs.Task           `json:"task"`
	TaskDefinition ecs.TaskDefinition `json:"taskDefinition"`
}

// TaskStateChange is the body of PathTaskState: ECS's SubmitTaskStateChange
// (task, status, reason, containers with runtimeId, exitCode, reason and
// networkBindings, pull and execution timestamps) plus the stop code. ECS's
// backend derives stopCode itself; here the agent, which saw why the task
// stopped, says so. The agent sets StopCode (TaskFailedToStart,
// EssentialContainerExited) and Reason only when it decided the stop; a stop
// the server asked for (StopTask) keeps the server's stopCode and reason.
//
// ContainerHealth and HealthStatus carry what ECS's agent reports through
// its telemetry channel: the health (HEALTHY, UNHEALTHY, UNKNOWN) of each
// container with a health check, by name, and the task's, which the agent
// derives from its essential containers (empty: no essential container has
// a health check).
type TaskStateChange struct {
	ecs.SubmitTaskStateChangeRequest
	StopCode        ecs.TaskStopCode            `json:"stopCode,omitempty"`
	ContainerHealth map[string]ecs.HealthStatus `json:"containerHealth,omitempty"`
	HealthStatus    ecs.HealthStatus            `json:"healthStatus,omitempty"`
}

// TaskStateResponse acknowledges a state change. Accepted=false with a
// Reason means the server ignored it (for example a report that would move
// a STOPPED task backwards); the agent logs it and does not retry.
type TaskStateResponse struct {
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"`
}

// LogRequest asks an agent for a container's output, for a user's `gantry
// logs` (docs/logs.md). Agents dial the server, never the other way round:
// the server sends requests on the agent's PathLogRequests stream (with a
// keepalive at least every 15 s), and the agent answers each by POSTing the
// output, streamed, to PathLogs + ID. An agent that cannot serve a request
// POSTs an empty body with HeaderLogError set to one of the LogError codes
// and the reason in HeaderLogMessage.
type LogRequest struct {
	ID         string     `json:"id,omitempty"`
	Task       string     `json:"task,omitempty"`      // task ARN
	Container  string     `json:"container,omitempty"` // name in the task definition
	Follow     bool       `json:"follow,omitempty"`    // until the container exits or the reader goes away
	Tail       int        `json:"tail,omitempty"`      // the last Tail lines; 0: all
	Since      *time.Time `json:"since,omitempty"`
	Timestamps bool       `json:"timestamps,omitempty"` // prefix each line with its RFC 3339 time
	Keepalive  bool       `json:"keepalive,omitempty"`  // no request: the stream is alive
}

// Headers of a POST to PathLogs that carries an error instead of output.
const (
	HeaderLogError   = "Gantry-Log-Error"   // LogErrNotFound, LogErrUnsupported, LogErrUnavailable
	HeaderLogMessage = "Gantry-Log-Message" // why, for the user
)

// LogError codes.
const (
	LogErrNotFound    = "NotFound"    // no such container on this instance (removed already?)
	LogErrUnsupported = "Unsupported" // its log driver cannot be read back
	LogErrUnavailable = "Unavailable" // the container engine is unreachable
)

// Error is the body of every non-2xx answer on agent endpoints.
type Error struct {
	Code    string `json:"code"` // e.g. "Unauthorized", "NotYourTask", "BadRequest"
	Message string `json:"message"`
}
