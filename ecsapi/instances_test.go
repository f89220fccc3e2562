package ecsapi_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestDescribeContainerInstances(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent(t, 2048, 4096)
	e.taskDef(t, "w", 512, 1024, 8080)
	e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("w")})

	missing := "arn:aws:ecs:us-east-1:123456789012:container-instance/work/0123456789abcdef0123456789abcdef"
	out, err := e.api.DescribeContainerInstances(e.ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(e.cluster), ContainerInstances: []string{a.ARN, missing}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.ContainerInstances) != 1 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" || aws.ToString(out.Failures[0].Arn) != missing {
		t.Fatalf("describe: %+v", out)
	}
	ci := out.ContainerInstances[0]
	if cpu, mem, ports := remaining(ci); cpu != 1536 || mem != 3072 || !slices.Equal(ports, []string{"22", "2375", "2376", "8080", "51678", "51679"}) {
		t.Errorf("remaining: cpu %d mem %d ports %v", cpu, mem, ports)
	}
	for _, r := range ci.RegisteredResources {
		if aws.ToString(r.Name) == "PORTS" && slices.Contains(r.StringSetValue, "8080") {
			t.Errorf("registered resources changed by a placement: %+v", r)
		}
	}
	if ci.Tags != nil || ci.RegisteredAt == nil || ci.Version < 2 {
		t.Errorf("instance: %+v", ci)
	}
}

func TestListContainerInstances(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var arns []string
	for range 5 {
		arns = append(arns, e.agent(t, 1024, 1024).ARN)
	}
	if _, err := e.api.UpdateContainerInstancesState(e.ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String(e.cluster),
		ContainerInstances: arns[:2], Status: types.ContainerInstanceStatusDraining}); err != nil {
		t.Fatal(err)
	}
	list := func(status types.ContainerInstanceStatus) []string {
		t.Helper()
		var all []string
		in := &ecs.ListContainerInstancesInput{Cluster: aws.String(e.cluster), Status: status, MaxResults: aws.Int32(2)}
		for {
			out, err := e.api.ListContainerInstances(e.ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, out.ContainerInstanceArns...)
			if out.NextToken == nil {
				return all
			}
			in.NextToken = out.NextToken
		}
	}
	if got := list(""); len(got) != 5 {
		t.Errorf("all: %v", got)
	}
	if got := list(types.ContainerInstanceStatusDraining); len(got) != 2 {
		t.Errorf("DRAINING: %v", got)
	}
	if got := list(types.ContainerInstanceStatusActive); len(got) != 3 {
		t.Errorf("ACTIVE: %v", got)
	}
	// The cluster query language filter: see TestListContainerInstancesFilter
	// (ecsapi/placement_test.go).
	out, err := e.api.ListContainerInstances(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(e.cluster),
		Filter: aws.String("attribute:ecs.os-type == linux"), Status: types.ContainerInstanceStatusActive})
	if err != nil || len(out.ContainerInstanceArns) != 3 {
		t.Errorf("filter and status: %v %v", out, err)
	}
}

// TestDrainingGetsNoNewTasks: RunTask and StartTask skip a DRAINING
// instance; back to ACTIVE, it takes tasks again.
func TestDrainingGetsNoNewTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent(t, 1024, 1024)
	e.taskDef(t, "d", 128, 128)
	e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("d")})
	up, err := e.api.UpdateContainerInstancesState(e.ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String(e.cluster),
		ContainerInstances: []string{a.ARN, "0123456789abcdef0123456789abcdef"}, Status: types.ContainerInstanceStatusDraining})
	if err != nil || len(up.ContainerInstances) != 1 || aws.ToString(up.ContainerInstances[0].Status) != "DRAINING" || len(up.Failures) != 1 {
		t.Fatalf("drain: %+v %v", up, err)
	}
	out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("d")})
	if len(out.Tasks) != 0 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "DRAINING" {
		t.Errorf("run on a draining instance: %+v", out)
	}
	st, err := e.api.StartTask(e.ctx, &ecs.StartTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("d"), ContainerInstances: []string{a.ARN}})
	if err != nil || len(st.Tasks) != 0 {
		t.Errorf("start on a draining instance: %+v %v", st, err)
	}
	// Its task keeps running.
	if ci := e.instance(t, a.ARN); ci.RunningTasksCount != 1 {
		t.Errorf("draining instance's tasks: %d", ci.RunningTasksCount)
	}
	_, err = e.api.UpdateContainerInstancesState(e.ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String(e.cluster),
		ContainerInstances: []string{a.ARN}, Status: types.ContainerInstanceStatus("REGISTERING")})
	wantCode(t, err, "InvalidParameterException")
	if _, err := e.api.UpdateContainerInstancesState(e.ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String(e.cluster),
		ContainerInstances: []string{a.ARN}, Status: types.ContainerInstanceStatusActive}); err != nil {
		t.Fatal(err)
	}
	if out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("d")}); len(out.Tasks) != 1 {
		t.Errorf("run after reactivating: %+v", out)
	}
}

func TestDeregisterContainerInstance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent(t, 1024, 1024)
	e.taskDef(t, "x", 128, 128)
	arn := aws.ToString(e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("x")}).Tasks[0].TaskArn)

	_, err := e.api.DeregisterContainerInstance(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String(e.cluster), ContainerInstance: aws.String(a.ARN)})
	wantCode(t, err, "InvalidParameterException")
	out, err := e.api.DeregisterContainerInstance(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String(e.cluster), ContainerInstance: aws.String(a.ARN), Force: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if ci := out.ContainerInstance; aws.ToString(ci.Status) != "INACTIVE" || ci.AgentConnected {
		t.Errorf("deregistered: %+v", ci)
	}
	got := e.task(t, arn)
	if aws.ToString(got.LastStatus) != "STOPPED" || aws.ToString(got.StoppedReason) != "Container instance deregistration forced by user" {
		t.Errorf("task on a force-deregistered instance: %+v", got)
	}
	if ci := e.instance(t, a.ARN); aws.ToString(ci.Status) != "INACTIVE" {
		t.Errorf("describe after deregistration: %+v", ci)
	}
	l, _ := e.api.ListContainerInstances(e.ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(e.cluster)})
	if len(l.ContainerInstanceArns) != 0 {
		t.Errorf("listed after deregistration: %v", l.ContainerInstanceArns)
	}
	cl, _ := e.api.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Clusters: []string{e.cluster}})
	if cl.Clusters[0].RegisteredContainerInstancesCount != 0 {
		t.Errorf("cluster counts: %+v", cl.Clusters[0])
	}
	// Deregistering again answers with the INACTIVE instance.
	if again, err := e.api.DeregisterContainerInstance(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String(e.cluster), ContainerInstance: aws.String(a.ARN)}); err != nil ||
		aws.ToString(again.ContainerInstance.Status) != "INACTIVE" {
		t.Errorf("deregister again: %+v %v", again, err)
	}
	if _, err := e.api.DeleteCluster(e.ctx, &ecs.DeleteClusterInput{Cluster: aws.String(e.cluster)}); err != nil {
		t.Errorf("delete the emptied cluster: %v", err)
	}
}

// TestRegisterContainerInstanceAPI: ECS's own RegisterContainerInstance
// records an instance with no agent; it takes no tasks.
func TestRegisterContainerInstanceAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out, err := e.api.RegisterContainerInstance(e.ctx, &ecs.RegisterContainerInstanceInput{
		Cluster:                  aws.String(e.cluster),
		InstanceIdentityDocument: aws.String(`{"instanceId":"i-0123456789abcdef0","availabilityZone":"us-east-1b"}`),
		TotalResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 1024},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 512},
		},
		VersionInfo: &types.VersionInfo{AgentVersion: aws.String("1.0")},
		Tags:        []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ci := out.ContainerInstance
	if aws.ToString(ci.Ec2InstanceId) != "i-0123456789abcdef0" || ci.AgentConnected || aws.ToString(ci.Status) != "ACTIVE" || len(ci.Tags) != 1 {
		t.Errorf("registered: %+v", ci)
	}
	az := ""
	for _, at := range ci.Attributes {
		if aws.ToString(at.Name) == "ecs.availability-zone" {
			az = aws.ToString(at.Value)
		}
	}
	if az != "us-east-1b" {
		t.Errorf("availability zone from the identity document: %q", az)
	}
	_, err = e.api.RegisterContainerInstance(e.ctx, &ecs.RegisterContainerInstanceInput{Cluster: aws.String(e.cluster),
		TotalResources: []types.Resource{{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 1}}})
	wantCode(t, err, "InvalidParameterException")
	tags, err := e.api.ListTagsForResource(e.ctx, &ecs.ListTagsForResourceInput{ResourceArn: ci.ContainerInstanceArn})
	if err != nil || len(tags.Tags) != 1 {
		t.Errorf("instance tags: %+v %v", tags, err)
	}
}
