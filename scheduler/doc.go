// Package scheduler decides where tasks go. It is pure: a snapshot of
// container instances (Node) and a Task (what it needs, its group, its
// placement constraints and strategies) go in, placements and
// per-instance failure reasons come out (Place). It does no I/O and reads
// no clock; committing a placement, and deciding again when a concurrent
// writer got there first, are the caller's job (state.Store.PlaceTasks
// guards each placement with the instance record's revision).
//
// Place follows ECS's order: filters (DefaultFilters: status, agent,
// attributes, CPU, memory, ports, GPUs; then the task's constraints,
// DistinctInstance and MemberOf), each one small type whose Explain is the
// failure reason users see ("RESOURCE:MEMORY", "AGENT", "MemberOf
// placement constraint unsatisfied."); then strategies (Binpack, Spread,
// Random), applied in order, each breaking the ties of the ones before;
// then the pick. ParseStrategies and ParseConstraints turn ECS's request
// shapes into these, with ECS's limits and errors; DefaultStrategies is
// ECS's service default. The cluster query language is package
// scheduler/query.
//
// The package also owns resource accounting (Resources, TaskResources,
// Remaining), so RunTask, DescribeContainerInstances and the scheduler
// agree on what a task holds. See docs/scheduler.md.
package scheduler
