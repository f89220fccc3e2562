// Package runtime is the contract between the node agent and a container
// engine: the Runtime interface, the runtime-neutral ContainerSpec it creates
// containers from, and the ContainerStatus and Event values it reports.
//
// Two implementations exist: runtime/docker drives a real Docker Engine, and
// runtime/sim simulates containers in memory for scale tests. The agent's
// per-task state machine drives either through this interface and must not
// know which one it has.
//
// This package knows nothing of ECS: translating an ECS container definition
// into a ContainerSpec, and a ContainerStatus into ECS's container and task
// states, is the agent's job. It also holds no policy: which images may run,
// whether privileged containers are allowed or what the default stop timeout
// is are decided by the caller (the Docker runtime only enforces what it is
// configured with).
//
// See docs/runtime.md.
package runtime
