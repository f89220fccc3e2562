package ecs

// The model's enum Scope (a Docker volume's scope) is renamed because Scope
// is the hand-written partition/region/account of ARNs (arn.go).
//go:generate go run ../internal/awsgen -model ../models/ecs/2014-11-13/service-2.json -pkg ecs -out zz_generated.go -rename Scope=DockerVolumeScope
