// Package ecs is the ECS domain in ECS's own words: wire types generated from
// the official model (zz_generated.go, see models/README.md), plus
// hand-written states, ARNs and validation.
package ecs
