package ecr

//go:generate go run ../internal/awsgen -model ../models/ecr/2015-09-21/service-2.json -pkg ecr -out zz_generated.go
