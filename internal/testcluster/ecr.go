package testcluster

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
)

// ECR is an ECR client for this cluster (same endpoint and credentials as
// the ECS client).
func (c *Cluster) ECR() *ecr.Client {
	return ecr.NewFromConfig(c.AWSConfig(), func(o *ecr.Options) { o.BaseEndpoint = aws.String(c.Server.URL()) })
}
