package ecsapi_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestMalformedExpressionsEverywhere: a memberOf expression that does not
// parse is refused where it is given, with the same message saying where it
// broke: RegisterTaskDefinition (ClientException, as ECS answers task
// definitions), CreateService, UpdateService and RunTask
// (InvalidParameterException).
func TestMalformedExpressionsEverywhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.taskDef(t, "app", 10, 16)
	const expr = "attribute:stack prod"
	const msg = `Invalid cluster query language expression in placementConstraints[0].expression "attribute:stack prod": expected an operator`
	check := func(t *testing.T, err error, code string) {
		t.Helper()
		wantCode(t, err, code)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("got %v, want it to contain %q", err, msg)
		}
	}
	bad := []types.PlacementConstraint{memberOf(expr)}

	t.Run("RegisterTaskDefinition", func(t *testing.T) {
		_, err := e.api.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String("bad"),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("gantry-testapp:latest"),
				Memory: aws.Int32(16)}},
			PlacementConstraints: []types.TaskDefinitionPlacementConstraint{{Type: types.TaskDefinitionPlacementConstraintTypeMemberOf,
				Expression: aws.String(expr)}},
		})
		check(t, err, "ClientException")
	})
	t.Run("CreateService", func(t *testing.T) {
		_, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: aws.String(e.cluster), ServiceName: aws.String("web"),
			TaskDefinition: aws.String("app"), DesiredCount: aws.Int32(0), PlacementConstraints: bad})
		check(t, err, "InvalidParameterException")
	})
	t.Run("UpdateService", func(t *testing.T) {
		if _, err := e.api.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: aws.String(e.cluster), ServiceName: aws.String("api"),
			TaskDefinition: aws.String("app"), DesiredCount: aws.Int32(0)}); err != nil {
			t.Fatal(err)
		}
		_, err := e.api.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String(e.cluster), Service: aws.String("api"),
			PlacementConstraints: bad})
		check(t, err, "InvalidParameterException")
	})
	t.Run("RunTask", func(t *testing.T) {
		_, err := e.api.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("app"), PlacementConstraints: bad})
		check(t, err, "InvalidParameterException")
	})
}
