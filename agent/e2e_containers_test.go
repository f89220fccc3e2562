package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	dcontainer "github.com/docker/docker/api/types/container"

	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/internal/testimage"
)

// End-to-end tests of complete container definitions: dependsOn, health
// checks, volumes, Linux parameters, the metadata endpoint.

// healthChecked gives c testapp's own health check of its /health (the
// image has no shell): ECS's shortest interval, so a check passes or fails
// within seconds.
func healthChecked(c types.ContainerDefinition, retries int32) types.ContainerDefinition {
	c.HealthCheck = &types.HealthCheck{
		Command:  []string{"CMD", "/testapp", "healthcheck", "http://127.0.0.1:8080/health"},
		Interval: aws.Int32(5), Timeout: aws.Int32(2), Retries: aws.Int32(retries),
	}
	return c
}

func dependsOn(c types.ContainerDefinition, name string, cond types.ContainerCondition) types.ContainerDefinition {
	c.DependsOn = append(c.DependsOn, types.ContainerDependency{ContainerName: aws.String(name), Condition: cond})
	return c
}

func mount(c types.ContainerDefinition, volume, path string, readOnly bool) types.ContainerDefinition {
	c.MountPoints = append(c.MountPoints, types.MountPoint{SourceVolume: aws.String(volume), ContainerPath: aws.String(path), ReadOnly: aws.Bool(readOnly)})
	return c
}

// inspect is `docker inspect` of a task's container.
func inspect(t *testing.T, task types.Task, name string) dcontainer.InspectResponse {
	t.Helper()
	id := aws.ToString(container(t, task, name).RuntimeId)
	if id == "" {
		t.Fatalf("container %s has no runtime ID: %s", name, testcluster.Describe(task))
	}
	c, err := testimage.Client(t).ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// output is a container's stdout and stderr, through the agent's runtime.
func output(t *testing.T, d *testcluster.DockerCluster, id string) string {
	t.Helper()
	rc, err := d.Runtime.Logs(context.Background(), id, runtime.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// find is a task's container, or the zero container.
func find(task types.Task, name string) types.Container {
	for _, c := range task.Containers {
		if aws.ToString(c.Name) == name {
			return c
		}
	}
	return types.Container{}
}

func health(s types.HealthStatus) func(types.Task) bool {
	return func(t types.Task) bool { return aws.ToString(t.LastStatus) == "RUNNING" && t.HealthStatus == s }
}

// SUCCESS waits for an init container's exit 0, HEALTHY for a health
// check to pass; a task volume carries the init container's file to the
// others; the task is HEALTHY; on stop, dependents stop before what they
// depend on.
func TestE2EDependsOnSuccessAndHealthy(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	initc := mount(testapp(d, "init", false, "write", "/shared/ready", "hello from init"), "shared", "/shared", false)
	db := healthChecked(testapp(d, "db", true, "serve"), 2)
	app := dependsOn(dependsOn(testapp(d, "app", true, "serve"), "init", types.ContainerConditionSuccess), "db", types.ContainerConditionHealthy)
	reader := dependsOn(mount(testapp(d, "reader", false, "cat", "/shared/ready"), "shared", "/shared", true), "init", types.ContainerConditionSuccess)
	td := register(t, d, "e2e-depends", func(in *awsecs.RegisterTaskDefinitionInput) {
		in.Volumes = []types.Volume{{Name: aws.String("shared")}}
	}, initc, db, app, reader)
	arn := runTask(t, d, td, nil)

	task := d.WaitTask(t, arn, startDeadline, health(types.HealthStatusHealthy))
	if h := container(t, task, "db").HealthStatus; h != types.HealthStatusHealthy {
		t.Errorf("db health %q", h)
	}
	ci, dbi, appi := inspect(t, task, "init"), inspect(t, task, "db"), inspect(t, task, "app")
	appStarted := parseTime(t, appi.State.StartedAt)
	if initDone := parseTime(t, ci.State.FinishedAt); ci.State.ExitCode != 0 || appStarted.Before(initDone) {
		t.Errorf("app started at %v, init (exit %d) finished at %v", appStarted, ci.State.ExitCode, initDone)
	}
	var firstHealthy time.Time
	for _, r := range dbi.State.Health.Log {
		if r.ExitCode == 0 {
			firstHealthy = r.End
			break
		}
	}
	if firstHealthy.IsZero() || appStarted.Before(firstHealthy) {
		t.Errorf("app started at %v, db first passed its health check at %v", appStarted, firstHealthy)
	}
	r := d.WaitTask(t, arn, startDeadline, func(t types.Task) bool {
		for _, c := range t.Containers {
			if aws.ToString(c.Name) == "reader" {
				return c.ExitCode != nil
			}
		}
		return false
	})
	rc := container(t, r, "reader")
	if out := output(t, d, aws.ToString(rc.RuntimeId)); *rc.ExitCode != 0 || out != "hello from init" {
		t.Errorf("reader: exit %d, output %q", *rc.ExitCode, out)
	}

	stopTask(t, d, arn, "done")
	task = d.WaitTask(t, arn, stopDeadline, status("STOPPED"))
	appi, dbi = inspect(t, task, "app"), inspect(t, task, "db")
	if appDone, dbDone := parseTime(t, appi.State.FinishedAt), parseTime(t, dbi.State.FinishedAt); dbDone.Before(appDone) {
		t.Errorf("db stopped at %v, before app, which depends on it, at %v", dbDone, appDone)
	}
}

// An essential container with a failing health check makes the task
// UNHEALTHY (it keeps running: only services replace unhealthy tasks); a
// non-essential container's health does not count.
func TestE2EUnhealthyTask(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	web := healthChecked(testapp(d, "web", true, "serve"), 1)
	web.Environment = []types.KeyValuePair{{Name: aws.String("TESTAPP_UNHEALTHY"), Value: aws.String("1")}}
	side := healthChecked(testapp(d, "side", false, "serve"), 1)
	arn := runTask(t, d, register(t, d, "e2e-unhealthy", nil, web, side), nil)
	task := d.WaitTask(t, arn, startDeadline, func(t types.Task) bool {
		return health(types.HealthStatusUnhealthy)(t) && find(t, "side").HealthStatus == types.HealthStatusHealthy
	})
	if h := container(t, task, "web").HealthStatus; h != types.HealthStatusUnhealthy {
		t.Errorf("web health %q", h)
	}
	time.Sleep(2 * time.Second)
	task = d.WaitTask(t, arn, time.Second, status("RUNNING"))
	if task.HealthStatus != types.HealthStatusUnhealthy {
		t.Errorf("task %s health %q", aws.ToString(task.LastStatus), task.HealthStatus)
	}
}

// A HEALTHY dependency that does not get there within its startTimeout
// stops the task before the dependent container starts.
func TestE2EHealthyDependencyTimesOut(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	db := healthChecked(testapp(d, "db", true, "serve"), 10)
	db.Environment = []types.KeyValuePair{{Name: aws.String("TESTAPP_UNHEALTHY"), Value: aws.String("1")}}
	db.StartTimeout = aws.Int32(6)
	app := dependsOn(testapp(d, "app", true, "serve"), "db", types.ContainerConditionHealthy)
	arn := runTask(t, d, register(t, d, "e2e-timeout", nil, db, app), nil)
	task := d.WaitTask(t, arn, startDeadline, status("STOPPED"))
	want := "CannotStartContainerError: dependency on container db (HEALTHY) can never be met: it did not get there within its startTimeout of 6s"
	if task.StopCode != types.TaskStopCodeTaskFailedToStart || aws.ToString(task.StoppedReason) != want {
		t.Errorf("stop: %s\nwant reason %q", testcluster.Describe(task), want)
	}
	if a := container(t, task, "app"); a.ExitCode != nil || aws.ToString(a.Reason) != want {
		t.Errorf("app: %+v", a)
	}
	if st := inspect(t, task, "app").State; st.StartedAt != "0001-01-01T00:00:00Z" {
		t.Errorf("app was started (at %s)", st.StartedAt)
	}
}

// A SUCCESS dependency that exits non-zero stops the task at once.
func TestE2ESuccessDependencyFails(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	migrate := testapp(d, "migrate", false, "exit", "3")
	app := dependsOn(testapp(d, "app", true, "serve"), "migrate", types.ContainerConditionSuccess)
	arn := runTask(t, d, register(t, d, "e2e-success-fails", nil, migrate, app), nil)
	task := d.WaitTask(t, arn, startDeadline, status("STOPPED"))
	want := "CannotStartContainerError: dependency on container migrate (SUCCESS) can never be met: it exited with exit code 3"
	if task.StopCode != types.TaskStopCodeTaskFailedToStart || aws.ToString(task.StoppedReason) != want {
		t.Errorf("stop: %s", testcluster.Describe(task))
	}
	if c := container(t, task, "migrate"); c.ExitCode == nil || *c.ExitCode != 3 {
		t.Errorf("migrate: %+v", c)
	}
}

// Volumes: a host bind mount, a task volume shared between containers
// (read-only for one of them, where a write fails), volumesFrom.
func TestE2EVolumes(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	hostDir := t.TempDir()
	writer := mount(testapp(d, "writer", false, "write", "/scratch/msg", "shared data"), "scratch", "/scratch", false)
	hostWriter := mount(testapp(d, "hostwriter", false, "write", "/host/msg", "on the host"), "host", "/host", false)
	reader := dependsOn(mount(testapp(d, "reader", false, "cat", "/scratch/msg"), "scratch", "/scratch", true), "writer", types.ContainerConditionSuccess)
	roWriter := dependsOn(mount(testapp(d, "rowriter", false, "write", "/scratch/other", "x"), "scratch", "/scratch", true), "writer", types.ContainerConditionSuccess)
	from := dependsOn(testapp(d, "from", false, "cat", "/scratch/msg"), "writer", types.ContainerConditionSuccess)
	from.VolumesFrom = []types.VolumeFrom{{SourceContainer: aws.String("writer"), ReadOnly: aws.Bool(true)}}
	main := testapp(d, "main", true, "serve")
	td := register(t, d, "e2e-volumes", func(in *awsecs.RegisterTaskDefinitionInput) {
		in.Volumes = []types.Volume{
			{Name: aws.String("scratch"), DockerVolumeConfiguration: &types.DockerVolumeConfiguration{Scope: types.ScopeTask}},
			{Name: aws.String("host"), Host: &types.HostVolumeProperties{SourcePath: aws.String(hostDir)}},
		}
	}, writer, hostWriter, reader, roWriter, from, main)
	arn := runTask(t, d, td, nil)
	task := d.WaitTask(t, arn, startDeadline, func(t types.Task) bool {
		if aws.ToString(t.LastStatus) != "RUNNING" {
			return false
		}
		for _, c := range t.Containers {
			if aws.ToString(c.Name) != "main" && c.ExitCode == nil {
				return false
			}
		}
		return true
	})
	for name, want := range map[string]struct {
		code int32
		out  string
	}{
		"writer": {0, ""}, "hostwriter": {0, ""}, "reader": {0, "shared data"}, "from": {0, "shared data"},
		"rowriter": {1, "open /scratch/other: read-only file system\n"},
	} {
		c := container(t, task, name)
		if out := output(t, d, aws.ToString(c.RuntimeId)); *c.ExitCode != want.code || out != want.out {
			t.Errorf("%s: exit %d, output %q; want %d, %q", name, *c.ExitCode, out, want.code, want.out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "msg")); err != nil || string(b) != "on the host" {
		t.Errorf("host file: %q, %v", b, err)
	}
	ri := inspect(t, task, "reader")
	if len(ri.Mounts) != 1 || ri.Mounts[0].Type != "volume" || ri.Mounts[0].RW || ri.Mounts[0].Destination != "/scratch" ||
		!strings.HasPrefix(ri.Mounts[0].Name, "ecs-e2e-volumes-") {
		t.Errorf("reader mounts: %+v", ri.Mounts)
	}
}

// A read-only root, dropped and added capabilities and the other Linux
// parameters are what docker inspect shows, and they hold: writing to the
// root fails.
func TestE2EReadonlyRootAndCapabilities(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	web := testapp(d, "web", true, "serve")
	web.ReadonlyRootFilesystem = aws.Bool(true)
	web.LinuxParameters = &types.LinuxParameters{
		Capabilities:       &types.KernelCapabilities{Add: []string{"NET_ADMIN"}, Drop: []string{"NET_RAW", "MKNOD"}},
		InitProcessEnabled: aws.Bool(true),
		SharedMemorySize:   aws.Int32(32),
		Tmpfs:              []types.Tmpfs{{ContainerPath: aws.String("/scratch"), Size: 16, MountOptions: []string{"noexec"}}},
	}
	web.Ulimits = []types.Ulimit{{Name: types.UlimitNameNofile, SoftLimit: 2048, HardLimit: 4096}}
	web.DockerSecurityOptions = []string{"no-new-privileges"}
	web.Hostname = aws.String("web-1")
	web.ExtraHosts = []types.HostEntry{{Hostname: aws.String("db.internal"), IpAddress: aws.String("10.1.2.3")}}
	web.SystemControls = []types.SystemControl{{Namespace: aws.String("net.core.somaxconn"), Value: aws.String("1024")}}
	probe := testapp(d, "probe", false, "write", "/probe", "x")
	probe.ReadonlyRootFilesystem = aws.Bool(true)
	arn := runTask(t, d, register(t, d, "e2e-security", nil, web, probe), nil)
	task := d.WaitTask(t, arn, startDeadline, func(t types.Task) bool {
		return aws.ToString(t.LastStatus) == "RUNNING" && find(t, "probe").ExitCode != nil
	})
	h := inspect(t, task, "web").HostConfig
	hasCap := func(list []string, c string) bool { return slices.Contains(list, c) || slices.Contains(list, "CAP_"+c) }
	if !h.ReadonlyRootfs || !hasCap(h.CapDrop, "NET_RAW") || !hasCap(h.CapDrop, "MKNOD") || !hasCap(h.CapAdd, "NET_ADMIN") {
		t.Errorf("readonly %v, cap add %q, cap drop %q", h.ReadonlyRootfs, h.CapAdd, h.CapDrop)
	}
	if h.Init == nil || !*h.Init || h.ShmSize != 32<<20 || h.Tmpfs["/scratch"] != "noexec,size=16777216" ||
		!slices.Equal(h.SecurityOpt, []string{"no-new-privileges"}) || h.Sysctls["net.core.somaxconn"] != "1024" ||
		!slices.Equal(h.ExtraHosts, []string{"db.internal:10.1.2.3"}) {
		t.Errorf("init %v shm %d tmpfs %q security %q sysctls %v hosts %q", h.Init, h.ShmSize, h.Tmpfs, h.SecurityOpt, h.Sysctls, h.ExtraHosts)
	}
	if len(h.Ulimits) != 1 || h.Ulimits[0].Name != "nofile" || h.Ulimits[0].Soft != 2048 || h.Ulimits[0].Hard != 4096 {
		t.Errorf("ulimits %+v", h.Ulimits)
	}
	if hn := inspect(t, task, "web").Config.Hostname; hn != "web-1" {
		t.Errorf("hostname %q", hn)
	}
	p := container(t, task, "probe")
	if out := output(t, d, aws.ToString(p.RuntimeId)); *p.ExitCode != 1 || !strings.Contains(out, "read-only file system") {
		t.Errorf("probe: exit %d, %q", *p.ExitCode, out)
	}
}

// The task metadata endpoint v4 answers from inside containers, with the
// task's and the container's own documents, as ECS serves them.
func TestE2EMetadataEndpoint(t *testing.T) {
	t.Parallel()
	d := testcluster.StartDocker(t)
	if d.Agent.MetadataEndpoint() == "" {
		testcluster.SkipOrFail(t, "the agent has no metadata endpoint (no bridge gateway?)")
	}
	main := testapp(d, "main", true, "serve")
	main.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(8080), HostPort: aws.Int32(0)}}
	taskDoc := dependsOn(testapp(d, "task", false, "metadata", "/task"), "main", types.ContainerConditionStart)
	self := dependsOn(testapp(d, "self", false, "metadata", ""), "main", types.ContainerConditionStart)
	stats := dependsOn(testapp(d, "stats", false, "metadata", "/stats"), "main", types.ContainerConditionStart)
	taskStats := dependsOn(testapp(d, "taskstats", false, "metadata", "/task/stats"), "main", types.ContainerConditionStart)
	td := register(t, d, "e2e-metadata", func(in *awsecs.RegisterTaskDefinitionInput) {
		in.Cpu, in.Memory = aws.String("256"), aws.String("512")
	}, main, taskDoc, self, stats, taskStats)
	arn := runTask(t, d, td, nil)
	task := d.WaitTask(t, arn, startDeadline, func(t types.Task) bool {
		if aws.ToString(t.LastStatus) != "RUNNING" {
			return false
		}
		for _, name := range []string{"task", "self", "stats", "taskstats"} {
			if find(t, name).ExitCode == nil {
				return false
			}
		}
		return true
	})
	read := func(name string, v any) {
		t.Helper()
		c := container(t, task, name)
		out := output(t, d, aws.ToString(c.RuntimeId))
		if *c.ExitCode != 0 {
			t.Fatalf("%s: exit %d: %s", name, *c.ExitCode, out)
		}
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%s: %v: %s", name, err, out)
		}
	}
	type doc struct {
		DockerID, Name, DockerName, Image, DesiredStatus, KnownStatus, Type, ContainerARN string
		Labels                                                                            map[string]string
		Limits                                                                            struct{ CPU, Memory float64 }
		Networks                                                                          []struct {
			NetworkMode   string
			IPv4Addresses []string
		}
		Ports []struct {
			ContainerPort, HostPort int
			Protocol                string
		}
	}
	var td4 struct {
		Cluster, TaskARN, Family, Revision, DesiredStatus, KnownStatus, AvailabilityZone, LaunchType string
		Limits                                                                                       struct{ CPU, Memory float64 }
		Containers                                                                                   []doc
	}
	read("task", &td4)
	if td4.TaskARN != arn || td4.Family != "e2e-metadata" || td4.Revision != "1" || td4.DesiredStatus != "RUNNING" ||
		td4.Cluster != aws.ToString(task.ClusterArn) || td4.AvailabilityZone != "us-east-1a" || td4.LaunchType != "EC2" ||
		td4.Limits.CPU != 0.25 || td4.Limits.Memory != 512 || len(td4.Containers) != 5 {
		t.Errorf("task document: %+v", td4)
	}
	for _, c := range td4.Containers {
		if c.Name == "main" {
			if c.DockerID != aws.ToString(container(t, task, "main").RuntimeId) || c.KnownStatus != "RUNNING" ||
				c.Labels["com.amazonaws.ecs.task-arn"] != arn || c.Limits.Memory != 64 || c.Type != "NORMAL" ||
				c.ContainerARN != aws.ToString(container(t, task, "main").ContainerArn) ||
				len(c.Networks) != 1 || c.Networks[0].NetworkMode != "bridge" || len(c.Networks[0].IPv4Addresses) != 1 ||
				len(c.Ports) == 0 || c.Ports[0].ContainerPort != 8080 || c.Ports[0].HostPort == 0 {
				t.Errorf("main in the task document: %+v", c)
			}
		}
	}
	var own doc
	read("self", &own)
	if own.Name != "self" || own.DockerID != aws.ToString(container(t, task, "self").RuntimeId) || !strings.HasPrefix(own.DockerName, "ecs-e2e-metadata-1-self-") {
		t.Errorf("own document: %+v", own)
	}

	// Stats are the engine's documents: the probe's own while it ran, and
	// the task's by Docker ID (main's among them, running, on the bridge).
	type statsDoc struct {
		ID, Name      string
		Read, PreRead time.Time
		CPUStats      struct {
			OnlineCPUs  int    `json:"online_cpus"`
			SystemUsage uint64 `json:"system_cpu_usage"`
		} `json:"cpu_stats"`
		MemoryStats struct{ Usage, Limit uint64 } `json:"memory_stats"`
		Networks    map[string]struct {
			RxBytes *uint64 `json:"rx_bytes"`
		}
	}
	checkStats := func(what string, s statsDoc, id string) {
		t.Helper()
		if s.ID != id || s.Read.IsZero() || s.PreRead.IsZero() || s.CPUStats.OnlineCPUs < 1 || s.CPUStats.SystemUsage == 0 ||
			s.MemoryStats.Usage == 0 || s.MemoryStats.Limit != 64<<20 || s.Networks["eth0"].RxBytes == nil {
			t.Errorf("%s: %+v, want the running container %s's stats", what, s, id)
		}
	}
	var ownStats statsDoc
	read("stats", &ownStats)
	statsID := aws.ToString(container(t, task, "stats").RuntimeId)
	checkStats("own stats", ownStats, statsID)
	if !strings.HasPrefix(ownStats.Name, "/ecs-e2e-metadata-1-stats-") {
		t.Errorf("own stats name %q, want the Docker name", ownStats.Name)
	}
	var byID map[string]statsDoc
	read("taskstats", &byID)
	mainID, probeID := aws.ToString(container(t, task, "main").RuntimeId), aws.ToString(container(t, task, "taskstats").RuntimeId)
	checkStats("main in the task stats", byID[mainID], mainID)
	checkStats("the probe in the task stats", byID[probeID], probeID)
	for id := range byID {
		if !slices.ContainsFunc(task.Containers, func(c types.Container) bool { return aws.ToString(c.RuntimeId) == id }) {
			t.Errorf("task stats have %s, not a container of the task", id)
		}
	}
}
