package ecsapi_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestStartTaskSkipsPlacementConstraints: StartTask is for schedulers of
// one's own, which choose the instance themselves. As in ECS, it checks
// what the instance can run (status, agent, attributes, resources) but not
// the task definition's memberOf constraints, which RunTask and services
// apply (ECS documents StartTask's failures as MISSING, INACTIVE, AGENT,
// ATTRIBUTE and RESOURCE:*, and memberOf for RunTask, services and task
// definitions).
func TestStartTaskSkipsPlacementConstraints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.zoned(t, "us-east-1a", 1024, "stack", "dev")
	_, err := e.api.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("prod-only"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("gantry-testapp:latest"),
			Memory: aws.Int32(512)}},
		PlacementConstraints: []types.TaskDefinitionPlacementConstraint{{Type: types.TaskDefinitionPlacementConstraintTypeMemberOf,
			Expression: aws.String("attribute:stack == prod")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("prod-only")})
	if len(out.Tasks) != 0 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MemberOf placement constraint unsatisfied." {
		t.Fatalf("RunTask: %+v", out)
	}
	start := func() *ecs.StartTaskOutput {
		t.Helper()
		st, err := e.api.StartTask(e.ctx, &ecs.StartTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("prod-only"),
			ContainerInstances: []string{dev.ARN}})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := start(); len(st.Tasks) != 1 || len(st.Failures) != 0 {
		t.Errorf("StartTask: %+v", st)
	}
	// Resources still bind: the second does not fit in 1024 MiB.
	start()
	if st := start(); len(st.Tasks) != 0 || len(st.Failures) != 1 || aws.ToString(st.Failures[0].Reason) != "RESOURCE:MEMORY" {
		t.Errorf("third StartTask: %+v", st)
	}
}
