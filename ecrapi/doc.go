// Package ecrapi is the front door of the ECR API: AWS JSON 1.1 over
// "POST /" (X-Amz-Target AmazonEC2ContainerRegistry_V20150921.<Action>),
// authenticated with SigV4 for service "ecr", on the same endpoint and key
// pair as the ECS API (server routes requests here by target prefix).
//
// Repository metadata (names, tag mutability, tags, creation times) lives
// in the store; image facts (digests, tags, sizes, push times, manifests)
// come from the registry's storage, which is the only copy of them. Like
// ecsapi it holds no state of its own, and every error keeps its
// *awsproto.Error type until awsproto.WriteError puts it on the wire.
package ecrapi
