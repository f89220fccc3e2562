// Package ecsapi is the front door of the ECS API: AWS JSON 1.1 over
// "POST /", dispatched on X-Amz-Target, authenticated with SigV4, with one
// file per resource. Handlers decode into the generated ecs types, validate,
// call the store, and return ECS-shaped answers; errors keep their
// *awsproto.Error type until awsproto.WriteError puts them on the wire.
//
// It must not hold state of its own: everything lives in the store, so any
// number of gantry servers can serve the same cluster.
package ecsapi
