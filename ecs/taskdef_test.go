package ecs

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/internal/awsproto"
)

var testScope = Scope{Partition: "aws", Region: "us-east-1", AccountID: "123456789012"}

func TestParseTaskDefinitionRef(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    TaskDefinitionRef
		wantErr string // "none" for ErrNoSuchTaskDefinition, else a ClientException message
	}{
		{in: "web", want: TaskDefinitionRef{Family: "web"}},
		{in: "web:3", want: TaskDefinitionRef{Family: "web", Revision: 3}},
		{in: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:12", want: TaskDefinitionRef{Family: "web", Revision: 12}},
		{in: "arn:aws:ecs:us-east-1:123456789012:task-definition/web", want: TaskDefinitionRef{Family: "web"}},
		{in: "web:latest", wantErr: "Invalid revision number. Number: latest"},
		{in: "web:0", wantErr: "Invalid revision number. Number: 0"},
		{in: "web:", wantErr: "Invalid revision number. Number: "},
		{in: "web:+1", wantErr: "Invalid revision number. Number: +1"},
		{in: "web:99999999999", wantErr: "Invalid revision number. Number: 99999999999"},
		{in: "", wantErr: "none"},
		{in: "my.web:1", wantErr: "none"},
		{in: "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1", wantErr: "none"},
		{in: "arn:aws:ecs:us-east-1:999999999999:task-definition/web:1", wantErr: "none"},
		{in: "arn:aws:ecs:us-east-1:123456789012:cluster/web", wantErr: "none"},
		{in: "arn:nonsense", wantErr: "none"},
	} {
		got, err := testScope.ParseTaskDefinitionRef(tc.in)
		switch {
		case tc.wantErr == "none":
			if !errors.Is(err, ErrNoSuchTaskDefinition) {
				t.Errorf("%q: err = %v, want ErrNoSuchTaskDefinition", tc.in, err)
			}
		case tc.wantErr != "":
			var ae *awsproto.Error
			if !errors.As(err, &ae) || ae.Code != ErrCodeClientException || ae.Message != tc.wantErr {
				t.Errorf("%q: err = %v, want ClientException %q", tc.in, err, tc.wantErr)
			}
		case err != nil || got != tc.want:
			t.Errorf("%q = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	if got := testScope.TaskDefinitionARN("web", 7); got != "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7" {
		t.Errorf("TaskDefinitionARN = %s", got)
	}
}

// fill sets every field reachable from v to a non-zero value.
func fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int32, reflect.Int64, reflect.Int:
		v.SetInt(7)
	case reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), depth+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), depth+1)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, depth+1)
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		if depth > 8 {
			return
		}
		if v.Type() == reflect.TypeOf(awsproto.Timestamp{}) {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	}
}

// TestTaskDefinitionFromRequestKeepsEveryMember guards "every field of the
// model is stored and returned": each member of RegisterTaskDefinitionRequest
// but tags (returned beside the task definition) must reach the task
// definition unchanged, however deep.
func TestTaskDefinitionFromRequestKeepsEveryMember(t *testing.T) {
	t.Parallel()
	in := new(RegisterTaskDefinitionRequest)
	fill(reflect.ValueOf(in).Elem(), 0)
	td := taskDefinitionFromRequest(in)
	var req, got map[string]any
	b, _ := json.Marshal(in)
	json.Unmarshal(b, &req)
	b, _ = json.Marshal(td)
	json.Unmarshal(b, &got)
	delete(req, "tags")
	for k, v := range req {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("member %s: request %v, task definition %v", k, v, got[k])
		}
	}
	if len(req) != reflect.TypeOf(*in).NumField()-1 {
		t.Errorf("fill left members unset: %d of %d", len(req), reflect.TypeOf(*in).NumField()-1)
	}
}

// TestNewTaskDefinitionKeepsEveryContainerMember registers a container with
// every member set to valid values and checks each comes back as sent.
func TestNewTaskDefinitionKeepsEveryContainerMember(t *testing.T) {
	t.Parallel()
	var cd ContainerDefinition
	fill(reflect.ValueOf(&cd).Elem(), 0)
	// Make the filled container valid; every member stays set.
	cd.Name, cd.Image, cd.Hostname = "app", "nginx:1.25", "app"
	cd.Memory, cd.MemoryReservation, cd.CPU = i32(512), i32(256), 128
	cd.Links = []string{"side"}
	cd.PortMappings = []PortMapping{{ContainerPort: i32(80), HostPort: i32(8080), Protocol: TransportProtocolTCP, Name: "http", AppProtocol: ApplicationProtocolHTTP}}
	cd.Essential = boolp(true)
	cd.RestartPolicy = &ContainerRestartPolicy{Enabled: boolp(true), IgnoredExitCodes: []int32{0}, RestartAttemptPeriod: i32(60)}
	cd.EnvironmentFiles = []EnvironmentFile{{Value: "arn:aws:s3:::bucket/app.env", Type: EnvironmentFileTypeS3}}
	cd.MountPoints = []MountPoint{{SourceVolume: "data", ContainerPath: "/data", ReadOnly: boolp(true)}}
	cd.VolumesFrom = []VolumeFrom{{SourceContainer: "side", ReadOnly: boolp(true)}}
	cd.LinuxParameters.Devices[0].Permissions = []DeviceCgroupPermission{DeviceCgroupPermissionRead}
	cd.LinuxParameters.Swappiness = i32(10)
	cd.DependsOn = []ContainerDependency{{ContainerName: "side", Condition: ContainerConditionStart}}
	cd.StartTimeout, cd.StopTimeout = i32(30), i32(30)
	cd.VersionConsistency = VersionConsistencyEnabled
	cd.ExtraHosts = []HostEntry{{Hostname: "db", IPAddress: "10.0.0.2"}}
	cd.Ulimits = []Ulimit{{Name: UlimitNameNofile, SoftLimit: 1024, HardLimit: 4096}}
	cd.LogConfiguration = &LogConfiguration{LogDriver: LogDriverJSONFile, Options: map[string]string{"max-size": "10m"},
		SecretOptions: []Secret{{Name: "x", ValueFrom: "arn:aws:ssm:us-east-1:123456789012:parameter/x"}}}
	cd.HealthCheck = &HealthCheck{Command: []string{"CMD", "true"}, Interval: i32(10), Timeout: i32(2), Retries: i32(2), StartPeriod: i32(5)}
	cd.ResourceRequirements = []ResourceRequirement{{Type: ResourceTypeGPU, Value: "1"}}
	cd.FirelensConfiguration = nil // a log router and a GPU workload in one container is not a real case
	side := ContainerDefinition{Name: "side", Image: "busybox", Memory: i32(32), Essential: boolp(false)}
	in := &RegisterTaskDefinitionRequest{
		Family:               "everything",
		ExecutionRoleARN:     "arn:aws:iam::123456789012:role/exec",
		TaskRoleARN:          "arn:aws:iam::123456789012:role/task",
		ContainerDefinitions: []ContainerDefinition{cd, side},
		Volumes:              []Volume{{Name: "data", Host: &HostVolumeProperties{SourcePath: "/srv/data"}}},
	}
	b, _ := json.Marshal(cd)
	td, err := NewTaskDefinition(in)
	if err != nil {
		t.Fatal(err)
	}
	var sent, got map[string]any
	json.Unmarshal(b, &sent)
	b, _ = json.Marshal(td.ContainerDefinitions[0])
	json.Unmarshal(b, &got)
	for k, v := range sent {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("member %s: sent %v, stored %v", k, v, got[k])
		}
	}
	wantSet := reflect.TypeOf(cd).NumField() - 1 // all but firelensConfiguration
	if len(sent) != wantSet {
		var missing []string
		for i := range reflect.TypeOf(cd).NumField() {
			tag, _, _ := strings.Cut(reflect.TypeOf(cd).Field(i).Tag.Get("json"), ",")
			if _, ok := sent[tag]; !ok {
				missing = append(missing, tag)
			}
		}
		t.Errorf("container members left unset: %v", missing)
	}
}
