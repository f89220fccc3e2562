// Package agentapi serves the control plane's side of the agent protocol
// (agent/protocol, docs/agent-protocol.md) under protocol.PathPrefix:
// registration with a join token, heartbeats that keep an instance's
// agentConnected lease alive, the assignments stream an etcd watch drives,
// task state reports (with container and task health), and the log relay:
// users' GET LogsPath (SigV4), sent down the agent's log request stream and
// answered by the agent's POST of the output (docs/logs.md).
//
// It is the only way an agent changes state: it authenticates the caller
// by its instance token (which names the instance; only its SHA-256 is
// stored) and lets an agent report only on tasks placed on its own
// instance. Like ecsapi it holds no state of its own, but for the log
// relay's pending requests; any number of servers can serve the same
// agents (a user's logs come through the server the task's agent streams
// from).
package agentapi
