// Package agent is Gantry's node agent: it registers its host as an ECS
// container instance, heartbeats, receives the tasks placed on it over the
// assignments stream, and runs them on a runtime.Runtime (Docker, or the
// simulation), reporting their state back. See docs/agent.md.
//
// It is split as STYLE.md's pattern 5 asks: Translate (translate*.go) is a
// pure function from an ECS task to runtime container specs and volumes;
// taskMachine (task.go, task_order.go, task_report.go) is the per-task
// state machine, one step per call; the runtime adapters below
// agent/runtime make the engine calls. The reconciler (reconcile.go) keeps
// one runner per task, driven by assignments and runtime events. Beside it:
// the task metadata endpoint v4 (metadata.go), the answers to log requests
// (logs.go), and the cleanup of what stopped tasks leave (cleanup.go).
//
// The agent talks only to the control plane's agent protocol
// (agent/protocol, docs/agent-protocol.md), never to etcd, and never starts
// a container for a task the server has not placed on its instance.
package agent
