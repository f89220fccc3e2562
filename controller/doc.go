// Package controller holds Gantry's leader-only control loops. Several
// `gantry server` processes may share one etcd cluster; Leader elects one of
// them (etcd's concurrency.Election) and runs the loops there only.
//
// The service controller (Services) keeps every service's tasks as its
// spec asks: it watches the store, and for each service that may need it
// reads the service, its tasks and the cluster's instances, asks Decide (a
// pure function: no etcd, clock or randomness) what to start and stop and
// how the deployments stand, writes the service's new status guarded by
// the revision it read, then stops tasks (desiredStatus STOPPED, as
// StopTask does) and places new ones through the same placement code
// RunTask uses (Placer). It must not keep state another server needs: what
// it remembers between passes lives in the service record.
package controller
