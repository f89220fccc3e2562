// Package docker is the Runtime for a Docker Engine, through the Engine API
// (API 1.41 and later; the client negotiates the version down).
//
// It is split as swarmkit's old dockerapi driver was: adapter.go holds only
// naked engine calls; translate.go turns a runtime.ContainerSpec into the
// engine's container configuration and status.go turns the engine's answers
// into runtime values, both pure and table-tested. The state machine that
// advances a task one step per call lives in the agent and drives this
// package through runtime.Runtime, so it is shared with the simulated
// runtime.
//
// It must not decide policy beyond Policy (privileged containers), retry, or
// remember anything: the engine is the only source of truth.
package docker
