// Package server wires the control plane together: it opens the store
// (embedded or external etcd), builds the API and serves HTTP. Config, New
// and Start are shared by the CLI and the end-to-end tests, so tests run the
// same server users do.
package server
