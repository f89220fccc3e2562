package ecs

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

func TestNewTaskDefinitionDefaults(t *testing.T) {
	t.Parallel()
	r := baseRequest()
	r.CPU, r.Memory = "0.5 vCPU", "1 GB"
	r.ContainerDefinitions[0].PortMappings = []PortMapping{{ContainerPort: i32(80)}, {ContainerPort: i32(53), Protocol: TransportProtocolUDP, HostPort: i32(5353)}}
	r.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD-SHELL", "curl -f localhost"}, StartPeriod: i32(10)}
	td, err := NewTaskDefinition(r)
	if err != nil {
		t.Fatal(err)
	}
	if td.CPU != "512" || td.Memory != "1024" {
		t.Errorf("task size = %q/%q, want 512/1024", td.CPU, td.Memory)
	}
	b, _ := json.Marshal(td)
	var got map[string]any
	json.Unmarshal(b, &got)
	want := map[string]any{
		"family":               "web",
		"cpu":                  "512",
		"memory":               "1024",
		"volumes":              []any{},
		"placementConstraints": []any{},
		"compatibilities":      []any{"EXTERNAL", "EC2"},
		"requiresAttributes":   []any{map[string]any{"name": "ecs.capability.container-health-check"}, map[string]any{"name": "ecs.capability.task-cpu-mem-limit"}},
		"revision":             0.0,
		"containerDefinitions": []any{map[string]any{
			"name": "app", "image": "nginx:1.25", "cpu": 0.0, "memory": 128.0, "essential": true,
			"portMappings": []any{
				map[string]any{"containerPort": 80.0, "protocol": "tcp"}, // bridge: hostPort stays unset (dynamic)
				map[string]any{"containerPort": 53.0, "hostPort": 5353.0, "protocol": "udp"},
			},
			"environment": []any{}, "mountPoints": []any{}, "volumesFrom": []any{},
			"healthCheck": map[string]any{"command": []any{"CMD-SHELL", "curl -f localhost"}, "interval": 30.0, "timeout": 5.0, "retries": 3.0, "startPeriod": 10.0},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("registered:\n%s\nwant:\n%s", g, w)
	}
}

func TestNewTaskDefinitionStaticHostPorts(t *testing.T) {
	t.Parallel()
	for _, mode := range []NetworkMode{NetworkModeAwsvpc, NetworkModeHost} {
		r := baseRequest()
		r.NetworkMode = mode
		r.ContainerDefinitions[0].PortMappings = []PortMapping{{ContainerPort: i32(8080)}, {ContainerPort: i32(9090), HostPort: i32(0)}}
		td, err := NewTaskDefinition(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, pm := range td.ContainerDefinitions[0].PortMappings {
			if pm.HostPort == nil || *pm.HostPort != *pm.ContainerPort {
				t.Errorf("%s: hostPort = %v, want the container port %d", mode, pm.HostPort, *pm.ContainerPort)
			}
		}
	}
}

func TestNewTaskDefinitionKeepsGivenValues(t *testing.T) {
	t.Parallel()
	r := baseRequest()
	r.ContainerDefinitions[0].Essential = boolp(true)
	r.ContainerDefinitions[0].Environment = []KeyValuePair{{Name: "A", Value: "1"}}
	r.ContainerDefinitions[0].HealthCheck = &HealthCheck{Command: []string{"CMD", "true"}, Interval: i32(10), Timeout: i32(3), Retries: i32(5)}
	td, err := NewTaskDefinition(r)
	if err != nil {
		t.Fatal(err)
	}
	c := td.ContainerDefinitions[0]
	if len(c.Environment) != 1 || *c.HealthCheck.Interval != 10 || *c.HealthCheck.Timeout != 3 || *c.HealthCheck.Retries != 5 {
		t.Errorf("given values changed: %+v %+v", c.Environment, c.HealthCheck)
	}
	if td.NetworkMode != "" || td.RequiresCompatibilities != nil {
		t.Errorf("networkMode %q and requiresCompatibilities %v should stay unset", td.NetworkMode, td.RequiresCompatibilities)
	}
}

func TestCompatibilities(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		req  *RegisterTaskDefinitionRequest
		edit func(*RegisterTaskDefinitionRequest)
		want []Compatibility
	}{
		{"Bridge", baseRequest(), nil, []Compatibility{CompatibilityExternal, CompatibilityEC2}},
		{"Fargate", fargateRequest(), nil, []Compatibility{CompatibilityEC2, CompatibilityFargate}},
		{"AwsvpcWithoutSize", baseRequest(), func(r *RegisterTaskDefinitionRequest) { r.NetworkMode = NetworkModeAwsvpc }, []Compatibility{CompatibilityEC2}},
		{"AwsvpcWithFargateSize", baseRequest(), func(r *RegisterTaskDefinitionRequest) {
			r.NetworkMode, r.CPU, r.Memory = NetworkModeAwsvpc, "256", "512"
		}, []Compatibility{CompatibilityEC2, CompatibilityFargate}},
		{"BridgeWithEFS", baseRequest(), func(r *RegisterTaskDefinitionRequest) {
			r.Volumes = []Volume{{Name: "v", EFSVolumeConfiguration: &EFSVolumeConfiguration{FileSystemID: "fs-1"}}}
		}, []Compatibility{CompatibilityEC2}},
		{"ManagedInstances", fargateRequest(), func(r *RegisterTaskDefinitionRequest) {
			r.RequiresCompatibilities = []Compatibility{CompatibilityManagedInstances}
		}, []Compatibility{CompatibilityEC2, CompatibilityFargate, CompatibilityManagedInstances}},
	} {
		if tc.edit != nil {
			tc.edit(tc.req)
		}
		td, err := NewTaskDefinition(tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(td.Compatibilities, tc.want) {
			t.Errorf("%s: compatibilities = %v, want %v", tc.name, td.Compatibilities, tc.want)
		}
	}
}

func TestRequiresAttributes(t *testing.T) {
	t.Parallel()
	r := fargateRequest()
	r.TaskRoleARN = "arn:aws:iam::123456789012:role/task"
	r.CPU, r.Memory = "1024", "2048"
	r.Volumes = []Volume{{Name: "shared", EFSVolumeConfiguration: &EFSVolumeConfiguration{FileSystemID: "fs-1", TransitEncryption: EFSTransitEncryptionEnabled}}}
	r.ContainerDefinitions = []ContainerDefinition{
		{
			Name: "app", Image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1",
			Secrets:          []Secret{{Name: "DB", ValueFrom: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}, {Name: "KEY", ValueFrom: "/app/key"}},
			LogConfiguration: &LogConfiguration{LogDriver: LogDriverAwsfirelens, Options: map[string]string{"Name": "cloudwatch"}},
			DependsOn:        []ContainerDependency{{ContainerName: "log_router", Condition: ContainerConditionStart}},
			HealthCheck:      &HealthCheck{Command: []string{"CMD", "true"}},
		},
		{
			Name: "log_router", Image: "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable", Essential: boolp(false),
			FirelensConfiguration: &FirelensConfiguration{Type: FirelensConfigurationTypeFluentbit},
			LogConfiguration:      &LogConfiguration{LogDriver: LogDriverAwslogs, Options: map[string]string{"awslogs-group": "g", "awslogs-region": "us-east-1"}},
		},
	}
	td, err := NewTaskDefinition(r)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range td.RequiresAttributes {
		got = append(got, a.Name)
	}
	want := []string{
		"com.amazonaws.ecs.capability.docker-remote-api.1.18",
		"com.amazonaws.ecs.capability.docker-remote-api.1.19",
		"com.amazonaws.ecs.capability.ecr-auth",
		"com.amazonaws.ecs.capability.logging-driver.awsfirelens",
		"com.amazonaws.ecs.capability.logging-driver.awslogs",
		"com.amazonaws.ecs.capability.task-iam-role",
		"ecs.capability.container-health-check",
		"ecs.capability.container-ordering",
		"ecs.capability.efs",
		"ecs.capability.efsAuth",
		"ecs.capability.execution-role-awslogs",
		"ecs.capability.execution-role-ecr-pull",
		"ecs.capability.firelens.fluentbit",
		"ecs.capability.secrets.asm.environment-variables",
		"ecs.capability.secrets.ssm.environment-variables",
		"ecs.capability.task-cpu-mem-limit",
		"ecs.capability.task-eni",
	}
	if !slices.Equal(got, want) {
		t.Errorf("requiresAttributes =\n%q\nwant\n%q", got, want)
	}
}
