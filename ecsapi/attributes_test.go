package ecsapi_test

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestAttributes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.agent(t, 1024, 1024), e.agent(t, 1024, 1024)
	bID := b.ARN[len(b.ARN)-32:]
	_, err := e.api.PutAttributes(e.ctx, &ecs.PutAttributesInput{Cluster: aws.String(e.cluster), Attributes: []types.Attribute{
		{Name: aws.String("stack"), Value: aws.String("prod"), TargetId: aws.String(a.ARN)},
		{Name: aws.String("stack"), Value: aws.String("dev"), TargetId: aws.String(bID), TargetType: types.TargetTypeContainerInstance},
		{Name: aws.String("gpu"), TargetId: aws.String(a.ARN)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	list := func(in *ecs.ListAttributesInput) []types.Attribute {
		t.Helper()
		in.Cluster, in.TargetType = aws.String(e.cluster), types.TargetTypeContainerInstance
		var all []types.Attribute
		for {
			out, err := e.api.ListAttributes(e.ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, out.Attributes...)
			if out.NextToken == nil {
				return all
			}
			in.NextToken = out.NextToken
		}
	}
	if got := list(&ecs.ListAttributesInput{AttributeName: aws.String("stack")}); len(got) != 2 {
		t.Errorf("stack attributes: %+v", got)
	}
	got := list(&ecs.ListAttributesInput{AttributeName: aws.String("stack"), AttributeValue: aws.String("dev")})
	if len(got) != 1 || aws.ToString(got[0].TargetId) != b.ARN || got[0].TargetType != types.TargetTypeContainerInstance {
		t.Errorf("stack=dev: %+v", got)
	}
	// Both instances also have the agent's two built-in attributes.
	if all := list(&ecs.ListAttributesInput{MaxResults: aws.Int32(2)}); len(all) != 7 {
		t.Errorf("all attributes, paged: %d", len(all))
	}

	if _, err := e.api.DeleteAttributes(e.ctx, &ecs.DeleteAttributesInput{Cluster: aws.String(e.cluster), Attributes: []types.Attribute{
		{Name: aws.String("stack"), TargetId: aws.String(a.ARN)}}}); err != nil {
		t.Fatal(err)
	}
	if got := list(&ecs.ListAttributesInput{AttributeName: aws.String("stack")}); len(got) != 1 {
		t.Errorf("after delete: %+v", got)
	}

	_, err = e.api.PutAttributes(e.ctx, &ecs.PutAttributesInput{Cluster: aws.String(e.cluster), Attributes: []types.Attribute{
		{Name: aws.String("x"), TargetId: aws.String("arn:aws:ecs:us-east-1:123456789012:container-instance/work/0123456789abcdef0123456789abcdef")}}})
	wantCode(t, err, "TargetNotFoundException")
	_, err = e.api.PutAttributes(e.ctx, &ecs.PutAttributesInput{Cluster: aws.String(e.cluster), Attributes: []types.Attribute{
		{Name: aws.String("bad name!"), TargetId: aws.String(a.ARN)}}})
	wantCode(t, err, "InvalidParameterException")
	_, err = e.api.PutAttributes(e.ctx, &ecs.PutAttributesInput{Cluster: aws.String(e.cluster), Attributes: []types.Attribute{
		{Name: aws.String("short"), TargetId: aws.String(bID)}}})
	wantCode(t, err, "InvalidParameterException") // an ID needs targetType

	var many []types.Attribute
	for i := range 10 {
		many = append(many, types.Attribute{Name: aws.String(fmt.Sprintf("c%d", i)), TargetId: aws.String(a.ARN)})
	}
	_, err = e.api.PutAttributes(e.ctx, &ecs.PutAttributesInput{Cluster: aws.String(e.cluster), Attributes: many})
	wantCode(t, err, "AttributeLimitExceededException") // gpu + 10 more
	if got := list(&ecs.ListAttributesInput{AttributeName: aws.String("c0")}); len(got) != 0 {
		t.Errorf("a refused PutAttributes stored %+v", got)
	}
}
