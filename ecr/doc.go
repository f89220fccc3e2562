// Package ecr is the ECR domain in ECR's own words: wire types generated from
// the official model (zz_generated.go, see models/README.md), plus
// hand-written rules on top of them: repository names, tags and tag
// mutability, image IDs, ECR's error constructors, and Registry.Resolve,
// which maps image references written for ECR to Gantry's built-in
// registry (what agents pull). It does no I/O.
package ecr
