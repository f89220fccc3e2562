package ecsapi_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	gecs "github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/testcluster"
)

// zoned registers a fake agent in zone az with the given memory and extra
// attributes (name=value pairs) that keeps heartbeating.
func (e *env) zoned(t *testing.T, az string, memory int64, attrs ...string) *testcluster.FakeAgent {
	t.Helper()
	o := testcluster.AgentOptions{CPU: 4096, Memory: memory, Attributes: []gecs.Attribute{{Name: gecs.AttributeAvailabilityZone, Value: az}}}
	for i := 0; i+1 < len(attrs); i += 2 {
		o.Attributes = append(o.Attributes, gecs.Attribute{Name: attrs[i], Value: attrs[i+1]})
	}
	a := e.c.RegisterAgent(t, e.cluster, o)
	a.KeepAlive()
	return a
}

func strategy(typ types.PlacementStrategyType, field string) types.PlacementStrategy {
	s := types.PlacementStrategy{Type: typ}
	if field != "" {
		s.Field = aws.String(field)
	}
	return s
}

func memberOf(expr string) types.PlacementConstraint {
	return types.PlacementConstraint{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String(expr)}
}

var distinct = types.PlacementConstraint{Type: types.PlacementConstraintTypeDistinctInstance}

// byInstance counts the tasks of a RunTask per instance and per zone (the
// task's availabilityZone).
func byInstance(out *ecs.RunTaskOutput) (instances, zones map[string]int) {
	instances, zones = map[string]int{}, map[string]int{}
	for _, task := range out.Tasks {
		instances[aws.ToString(task.ContainerInstanceArn)]++
		zones[aws.ToString(task.AvailabilityZone)]++
	}
	return instances, zones
}

// TestRunTaskPlacementStrategies runs tasks through the SDK onto fake
// agents in three zones, with ECS's default and each strategy.
func TestRunTaskPlacementStrategies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Two instances per zone; the second of each has less memory.
	var agents []*testcluster.FakeAgent
	for _, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		agents = append(agents, e.zoned(t, az, 8192), e.zoned(t, az, 4096))
	}
	e.taskDef(t, "web", 64, 256)
	stop := func(out *ecs.RunTaskOutput) {
		t.Helper()
		for _, task := range out.Tasks {
			if _, err := e.api.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String(e.cluster), Task: task.TaskArn}); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("DefaultSpreadsZonesThenInstances", func(t *testing.T) {
		out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(6)})
		instances, zones := byInstance(out)
		if len(instances) != 6 || zones["us-east-1a"] != 2 || zones["us-east-1b"] != 2 || zones["us-east-1c"] != 2 {
			t.Errorf("instances %v, zones %v", instances, zones)
		}
		// The next three go one per zone again: spread counts the group's
		// running tasks (family:web).
		more := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(3)})
		if _, zones := byInstance(more); len(zones) != 3 {
			t.Errorf("second call zones %v", zones)
		}
		// Another group starts its own spread.
		other := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(3), Group: aws.String("batch")})
		if _, zones := byInstance(other); len(zones) != 3 {
			t.Errorf("group batch zones %v", zones)
		}
		stop(out)
		stop(more)
		stop(other)
	})
	t.Run("BinpackMemory", func(t *testing.T) {
		out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(10),
			PlacementStrategy: []types.PlacementStrategy{strategy(types.PlacementStrategyTypeBinpack, "memory")}})
		// 4096 MiB take 16 tasks of 256: all ten go on one of the small
		// instances (which one depends on registration order).
		instances, _ := byInstance(out)
		if len(instances) != 1 || instances[agents[1].ARN]+instances[agents[3].ARN]+instances[agents[5].ARN] != 10 {
			t.Errorf("binpack: %v", instances)
		}
		stop(out)
	})
	t.Run("SpreadZonesThenBinpack", func(t *testing.T) {
		out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(6), Group: aws.String("zb"),
			PlacementStrategy: []types.PlacementStrategy{strategy(types.PlacementStrategyTypeSpread, "attribute:ecs.availability-zone"),
				strategy(types.PlacementStrategyTypeBinpack, "memory")}})
		instances, zones := byInstance(out)
		if len(zones) != 3 || instances[agents[1].ARN] != 2 || instances[agents[3].ARN] != 2 || instances[agents[5].ARN] != 2 {
			t.Errorf("spread zones then binpack: %v %v", instances, zones)
		}
		stop(out)
	})
	t.Run("SpreadHost", func(t *testing.T) {
		out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(6), Group: aws.String("h"),
			PlacementStrategy: []types.PlacementStrategy{strategy(types.PlacementStrategyTypeSpread, "host")}})
		if instances, _ := byInstance(out); len(instances) != 6 {
			t.Errorf("spread host: %v", instances)
		}
		stop(out)
	})
	t.Run("Random", func(t *testing.T) {
		out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(10),
			PlacementStrategy: []types.PlacementStrategy{strategy(types.PlacementStrategyTypeRandom, "")}})
		if len(out.Tasks) != 10 {
			t.Errorf("random: %d tasks, failures %v", len(out.Tasks), out.Failures)
		}
		stop(out)
	})
	t.Run("ErrTooManyStrategies", func(t *testing.T) {
		_, err := e.api.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("web"),
			PlacementStrategy: slices.Repeat([]types.PlacementStrategy{strategy(types.PlacementStrategyTypeRandom, "")}, 6)})
		wantCode(t, err, "InvalidParameterException")
	})
	t.Run("ErrBadField", func(t *testing.T) {
		_, err := e.api.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("web"),
			PlacementStrategy: []types.PlacementStrategy{strategy(types.PlacementStrategyTypeSpread, "zone")}})
		wantCode(t, err, "InvalidParameterException")
	})
}

// TestRunTaskPlacementConstraints: constraints bind; the task definition's
// hold with the call's; a task that fits nowhere is explained per instance
// in ECS's words.
func TestRunTaskPlacementConstraints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t2a := e.zoned(t, "us-east-1a", 4096, "ecs.instance-type", "t2.small", "stack", "prod")
	t2b := e.zoned(t, "us-east-1b", 4096, "ecs.instance-type", "t2.medium")
	m5c := e.zoned(t, "us-east-1c", 4096, "ecs.instance-type", "m5.large", "stack", "dev")
	e.taskDef(t, "app", 64, 128)

	run := func(t *testing.T, count int32, group string, constraints ...types.PlacementConstraint) *ecs.RunTaskOutput {
		t.Helper()
		in := &ecs.RunTaskInput{TaskDefinition: aws.String("app"), Count: aws.Int32(count), PlacementConstraints: constraints}
		if group != "" {
			in.Group = aws.String(group)
		}
		return e.run(t, in)
	}
	for _, tc := range []struct {
		name        string
		constraints []types.PlacementConstraint
		count       int32
		want        []string // instances that got a task
	}{
		{"InstanceTypeMatches", []types.PlacementConstraint{memberOf("attribute:ecs.instance-type =~ t2.*")}, 4, []string{t2a.ARN, t2b.ARN}},
		{"ZoneIn", []types.PlacementConstraint{memberOf("attribute:ecs.availability-zone in [us-east-1a, us-east-1c]")}, 2, []string{t2a.ARN, m5c.ARN}},
		{"CustomAttributeNotEquals", []types.PlacementConstraint{memberOf("attribute:stack != prod")}, 2, []string{m5c.ARN}},
		{"Compound", []types.PlacementConstraint{memberOf("(attribute:stack == prod or attribute:stack == dev) and not(attribute:ecs.instance-type =~ m5.*)")}, 1, []string{t2a.ARN}},
		{"AgentConnected", []types.PlacementConstraint{memberOf("agentConnected == true and registeredAt >= 2000-01-01")}, 3, []string{t2a.ARN, t2b.ARN, m5c.ARN}},
		{"Ec2InstanceID", []types.PlacementConstraint{memberOf("ec2InstanceId =~ i-.*")}, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, tc.count, tc.name, tc.constraints...)
			instances, _ := byInstance(out)
			if tc.want != nil && !slices.Equal(slices.Sorted(mapsKeys(instances)), slices.Sorted(slices.Values(tc.want))) || len(out.Tasks) != int(tc.count) {
				t.Errorf("placed on %v (failures %v), want %v", instances, out.Failures, tc.want)
			}
		})
	}

	t.Run("DistinctInstance", func(t *testing.T) {
		out := run(t, 5, "db", distinct)
		instances, _ := byInstance(out)
		if len(out.Tasks) != 3 || len(instances) != 3 {
			t.Errorf("placed %v", instances)
		}
		reasons := failureReasons(out.Failures)
		if len(reasons) != 3 || reasons[0] != "DistinctInstance placement constraint unsatisfied." || reasons[2] != reasons[0] {
			t.Errorf("failures %v", out.Failures)
		}
		// Tasks already running in the group count: nothing more fits.
		if again := run(t, 1, "db", distinct); len(again.Tasks) != 0 || len(again.Failures) != 3 {
			t.Errorf("second distinct run: %+v", again)
		}
		// Affinity: follow the group; anti-affinity: avoid it.
		if out := run(t, 1, "cache", memberOf("task:group == db and attribute:stack == dev")); len(out.Tasks) != 1 ||
			aws.ToString(out.Tasks[0].ContainerInstanceArn) != m5c.ARN {
			t.Errorf("affinity: %+v", out)
		}
		if out := run(t, 1, "", memberOf("not(task:group == db)")); len(out.Tasks) != 0 || len(out.Failures) != 3 {
			t.Errorf("anti-affinity with db everywhere: %+v", out)
		}
	})
	t.Run("RunningTasksCount", func(t *testing.T) {
		// The agent of t2a reports nothing, so its tasks stay PENDING but
		// count: desired RUNNING.
		n := e.instance(t, t2a.ARN).RunningTasksCount
		out := run(t, 1, "", memberOf(fmt.Sprintf("runningTasksCount == %d and attribute:stack == prod", n)))
		if len(out.Tasks) != 1 {
			t.Errorf("runningTasksCount == %d: %+v", n, out)
		}
		out = run(t, 1, "", memberOf(fmt.Sprintf("runningTasksCount == %d and attribute:stack == prod", n)))
		if len(out.Tasks) != 0 {
			t.Errorf("runningTasksCount should have moved on: %+v", out)
		}
	})
	t.Run("ConstraintsExcludeEverything", func(t *testing.T) {
		out := run(t, 2, "", memberOf("attribute:ecs.instance-type == g2.2xlarge"))
		if len(out.Tasks) != 0 || len(out.Failures) != 3 {
			t.Fatalf("got %+v", out)
		}
		for _, f := range out.Failures {
			if aws.ToString(f.Reason) != "MemberOf placement constraint unsatisfied." {
				t.Errorf("failure %s %s", aws.ToString(f.Arn), aws.ToString(f.Reason))
			}
		}
	})
	t.Run("TaskDefinitionConstraintsMerge", func(t *testing.T) {
		_, err := e.api.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String("zoned"),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("gantry-testapp:latest"),
				Memory: aws.Int32(64), Essential: aws.Bool(true)}},
			PlacementConstraints: []types.TaskDefinitionPlacementConstraint{{Type: types.TaskDefinitionPlacementConstraintTypeMemberOf,
				Expression: aws.String("attribute:ecs.availability-zone != us-east-1c")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("zoned"), Count: aws.Int32(4)})
		if instances, _ := byInstance(out); len(out.Tasks) != 4 || instances[m5c.ARN] != 0 {
			t.Errorf("task definition constraint: %v", instances)
		}
		out = e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("zoned"), PlacementConstraints: []types.PlacementConstraint{memberOf("attribute:stack == dev")}})
		if len(out.Tasks) != 0 || len(out.Failures) != 3 {
			t.Errorf("contradicting constraints placed %+v", out)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name        string
			constraints []types.PlacementConstraint
			msg         string
		}{
			{"Syntax", []types.PlacementConstraint{memberOf("attribute:stack prod")},
				`Invalid cluster query language expression in placementConstraints[0].expression "attribute:stack prod": expected an operator`},
			{"Where", []types.PlacementConstraint{distinct, memberOf("attribute:stack == prod and (agentConnected == true")}, "expected ) to close the ( opened at character 29 at the end of the expression (character 52)"},
			{"TooLong", []types.PlacementConstraint{memberOf("attribute:a == " + strings.Repeat("b", 2000))}, "maximum is 2000"},
			{"MemberOfNeedsExpression", []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf}}, "requires an expression"},
			{"DistinctInstanceTakesNone", []types.PlacementConstraint{{Type: types.PlacementConstraintTypeDistinctInstance, Expression: aws.String("x")}}, "distinctInstance"},
			{"TooMany", slices.Repeat([]types.PlacementConstraint{distinct}, 11), "maximum of 10 placement constraints"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.api.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("app"), PlacementConstraints: tc.constraints})
				wantCode(t, err, "InvalidParameterException")
				if err == nil || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("got %v, want it to contain %q", err, tc.msg)
				}
			})
		}
	})
}

func mapsKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestListContainerInstancesFilter filters with the cluster query language,
// with the status and across pages.
func TestListContainerInstancesFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.zoned(t, "us-east-1a", 4096, "ecs.instance-type", "t2.small", "stack", "prod")
	b := e.zoned(t, "us-east-1b", 4096, "ecs.instance-type", "t2.medium")
	c := e.zoned(t, "us-east-1a", 4096, "ecs.instance-type", "g2.2xlarge", "stack", "dev")
	// d has no agent: registered through ECS's own API.
	d, err := e.api.RegisterContainerInstance(e.ctx, &ecs.RegisterContainerInstanceInput{Cluster: aws.String(e.cluster),
		TotalResources: []types.Resource{{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 1024},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 1024}}})
	if err != nil {
		t.Fatal(err)
	}
	dARN := aws.ToString(d.ContainerInstance.ContainerInstanceArn)
	e.taskDef(t, "db", 64, 64)
	e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("db"), Group: aws.String("database"), PlacementConstraints: []types.PlacementConstraint{memberOf("attribute:stack == dev")}})
	if _, err := e.api.UpdateContainerInstancesState(e.ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String(e.cluster),
		ContainerInstances: []string{b.ARN}, Status: types.ContainerInstanceStatusDraining}); err != nil {
		t.Fatal(err)
	}

	list := func(filter string, status types.ContainerInstanceStatus) ([]string, error) {
		var all []string
		in := &ecs.ListContainerInstancesInput{Cluster: aws.String(e.cluster), Filter: aws.String(filter), Status: status, MaxResults: aws.Int32(1)}
		for {
			out, err := e.api.ListContainerInstances(e.ctx, in)
			if err != nil {
				return nil, err
			}
			all = append(all, out.ContainerInstanceArns...)
			if out.NextToken == nil {
				slices.Sort(all)
				return all, nil
			}
			in.NextToken = out.NextToken
		}
	}
	sorted := func(arns ...string) []string { return slices.Sorted(slices.Values(arns)) }
	for _, tc := range []struct {
		filter string
		status types.ContainerInstanceStatus
		want   []string
	}{
		{"attribute:ecs.instance-type == g2.2xlarge", "", sorted(c.ARN)},
		{"attribute:stack == prod", "", sorted(a.ARN)},
		{"attribute:stack != prod", "", sorted(c.ARN)},
		{"attribute:ecs.instance-type in [t2.small, t2.medium]", "", sorted(a.ARN, b.ARN)},
		{"attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a", "", sorted(a.ARN)},
		{"attribute:ecs.instance-type =~ t2.*", types.ContainerInstanceStatusActive, sorted(a.ARN)},
		{"agentConnected == false", "", sorted(dARN)},
		{"agentConnected != false", "", sorted(a.ARN, b.ARN, c.ARN)},
		{"task:group == database", "", sorted(c.ARN)},
		{"not(task:group == database) and agentConnected == true", "", sorted(a.ARN, b.ARN)},
		{"runningTasksCount > 0", "", sorted(c.ARN)},
		{"registeredAt < 2000-01-01", "", nil},
		{"agentVersion == fake", "", sorted(a.ARN, b.ARN, c.ARN)},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			got, err := list(tc.filter, tc.status)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %v %v, want %v", got, err, tc.want)
			}
		})
	}
	_, err = list("attribute:stack = prod", "")
	wantCode(t, err, "InvalidParameterException")
	if err == nil || !strings.Contains(err.Error(), `Invalid cluster query language expression in filter "attribute:stack = prod"`) {
		t.Errorf("bad filter: %v", err)
	}
}

// TestRunTaskConcurrentDistinctInstance: forty clients, through two API
// servers on one store, RunTask one task each with distinctInstance on six
// instances: exactly six are placed, one per instance, however the races
// fall. The task group lives in the instance record, which every placement
// on the instance rewrites under its revision, so two servers cannot both
// see an instance free of the group.
func TestRunTaskConcurrentDistinctInstance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 6 {
		e.zoned(t, fmt.Sprintf("us-east-1%c", 'a'+i%3), 8192)
	}
	e.taskDef(t, "solo", 16, 16)
	second := secondAPI(t, e.c)
	var mu sync.Mutex
	placed := map[string]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			api := e.api
			if i%2 == 1 {
				api = second
			}
			out, err := api.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String("solo"),
				PlacementConstraints: []types.PlacementConstraint{distinct}})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, task := range out.Tasks {
				placed[aws.ToString(task.ContainerInstanceArn)]++
			}
		})
	}
	wg.Wait()
	if len(placed) != 6 {
		t.Errorf("placed on %d instances: %v", len(placed), placed)
	}
	for arn, n := range placed {
		if n != 1 {
			t.Errorf("%s got %d tasks of the group", arn, n)
		}
	}
}

// TestRunTaskPlacementCLI runs the AWS CLI's own shorthand for strategies
// and constraints, and its filter.
func TestRunTaskPlacementCLI(t *testing.T) {
	t.Parallel()
	cli := testcluster.AWSCLI(t)
	e := newEnv(t)
	a := e.zoned(t, "us-east-1a", 4096, "ecs.instance-type", "t2.small")
	b := e.zoned(t, "us-east-1b", 8192, "ecs.instance-type", "t2.medium")
	e.zoned(t, "us-east-1c", 4096, "ecs.instance-type", "m5.large")
	e.taskDef(t, "cli", 64, 256)

	out, err := awsCLI(t, cli, e.c, "ecs", "run-task", "--cluster", e.cluster, "--task-definition", "cli", "--count", "4",
		"--placement-strategy", "type=spread,field=attribute:ecs.availability-zone", "type=binpack,field=memory",
		"--placement-constraints", "type=memberOf,expression=attribute:ecs.instance-type =~ t2.*", "type=distinctInstance")
	if err != nil {
		t.Fatal(err)
	}
	tasks, _ := out["tasks"].([]any)
	failures, _ := out["failures"].([]any)
	zones := map[string]bool{}
	for _, task := range tasks {
		zones[task.(map[string]any)["availabilityZone"].(string)] = true
	}
	if len(tasks) != 2 || !zones["us-east-1a"] || !zones["us-east-1b"] || len(failures) != 3 {
		t.Errorf("run-task: tasks in %v, failures %v", zones, failures)
	}

	out, err = awsCLI(t, cli, e.c, "ecs", "list-container-instances", "--cluster", e.cluster,
		"--filter", "attribute:ecs.instance-type =~ t2.* and task:group == family:cli")
	if err != nil {
		t.Fatal(err)
	}
	arns, _ := out["containerInstanceArns"].([]any)
	if len(arns) != 2 || !slices.Contains(arns, any(a.ARN)) || !slices.Contains(arns, any(b.ARN)) {
		t.Errorf("list-container-instances --filter: %v", arns)
	}

	_, err = awsCLI(t, cli, e.c, "ecs", "run-task", "--cluster", e.cluster, "--task-definition", "cli",
		"--placement-constraints", "type=memberOf,expression=attribute:ecs.instance-type =~")
	if err == nil || !strings.Contains(err.Error(), "InvalidParameterException") || !strings.Contains(err.Error(), "expected a value after =~") {
		t.Errorf("bad expression: %v", err)
	}
}

// TestPlacementSimAgents runs real node agents on the simulated runtime (the
// code `gantry agent --runtime sim` runs), six in three zones, and places
// tasks on them through the SDK: the default spread puts three tasks in
// each zone, every task reports RUNNING with its instance's zone, and
// distinctInstance then fills exactly the six instances.
func TestPlacementSimAgents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fleet, err := testcluster.StartSimFleet(e.ctx, testcluster.SimFleetConfig{Server: e.c.Server.URL(), Cluster: e.cluster,
		Token: e.c.Server.JoinToken(), N: 6, Zones: []string{"us-east-1a", "us-east-1b", "us-east-1c"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.Close)
	zoneOf := map[string]string{}
	for i, a := range fleet.Agents {
		zoneOf[a.ContainerInstanceARN()] = []string{"us-east-1a", "us-east-1b", "us-east-1c"}[i%3]
	}
	e.taskDef(t, "sim", 128, 256)

	out := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("sim"), Count: aws.Int32(9)})
	if instances, zones := byInstance(out); len(out.Tasks) != 9 || len(instances) != 6 ||
		zones["us-east-1a"] != 3 || zones["us-east-1b"] != 3 || zones["us-east-1c"] != 3 {
		t.Fatalf("default spread: instances %v zones %v failures %v", instances, zones, out.Failures)
	}
	var arns []string
	for _, task := range out.Tasks {
		arns = append(arns, aws.ToString(task.TaskArn))
	}
	testcluster.WaitFor(t, 20*time.Second, "the agents to report every task RUNNING", func() bool {
		d, err := e.api.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String(e.cluster), Tasks: arns})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range d.Tasks {
			if aws.ToString(task.LastStatus) != "RUNNING" {
				return false
			}
			if az := aws.ToString(task.AvailabilityZone); az != zoneOf[aws.ToString(task.ContainerInstanceArn)] {
				t.Fatalf("task in %s on an instance of %s", az, zoneOf[aws.ToString(task.ContainerInstanceArn)])
			}
		}
		return len(d.Tasks) == 9
	})

	distinct := e.run(t, &ecs.RunTaskInput{TaskDefinition: aws.String("sim"), Count: aws.Int32(8), Group: aws.String("one-each"),
		PlacementConstraints: []types.PlacementConstraint{distinct}})
	if instances, _ := byInstance(distinct); len(instances) != 6 || len(distinct.Tasks) != 6 || len(distinct.Failures) != 6 {
		t.Errorf("distinctInstance: %v, failures %v", instances, distinct.Failures)
	}
	if err := fleet.Err(); err != nil {
		t.Error(err)
	}
}
