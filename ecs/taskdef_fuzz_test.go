package ecs

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/internal/awsproto"
)

// requestFromTaskDefinition is what a user does with DescribeTaskDefinition's
// answer: feed the task definition back to RegisterTaskDefinition.
func requestFromTaskDefinition(td *TaskDefinition) *RegisterTaskDefinitionRequest {
	return &RegisterTaskDefinitionRequest{
		Family: td.Family, TaskRoleARN: td.TaskRoleARN, ExecutionRoleARN: td.ExecutionRoleARN,
		NetworkMode: td.NetworkMode, ContainerDefinitions: td.ContainerDefinitions, Volumes: td.Volumes,
		PlacementConstraints: td.PlacementConstraints, RequiresCompatibilities: td.RequiresCompatibilities,
		CPU: td.CPU, Memory: td.Memory, PidMode: td.PidMode, IpcMode: td.IpcMode,
		ProxyConfiguration: td.ProxyConfiguration, InferenceAccelerators: td.InferenceAccelerators,
		EphemeralStorage: td.EphemeralStorage, RuntimePlatform: td.RuntimePlatform,
		EnableFaultInjection: td.EnableFaultInjection,
	}
}

// FuzzNewTaskDefinition checks the domain rules on arbitrary requests: no
// panic, only ECS-coded errors, and a fixpoint: what ECS stores, registered
// again, is accepted and stored identically (describe, edit, register is how
// most task definitions are updated).
func FuzzNewTaskDefinition(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "ecsapi", "testdata", "RegisterTaskDefinition", "*.json"))
	for _, path := range files {
		b, _ := os.ReadFile(path)
		var gc struct{ Request json.RawMessage }
		if json.Unmarshal(b, &gc) == nil {
			f.Add([]byte(gc.Request))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in := new(RegisterTaskDefinitionRequest)
		if awsproto.Decode(body, in) != nil || in.Validate("") != nil {
			return
		}
		td, err := NewTaskDefinition(in)
		if err != nil {
			var ae *awsproto.Error
			if !errors.As(err, &ae) || ae.Code != ErrCodeClientException {
				t.Fatalf("error %v is not a ClientException", err)
			}
			return
		}
		first, _ := json.Marshal(td)
		again, err := NewTaskDefinition(requestFromTaskDefinition(td))
		if err != nil {
			if strings.HasPrefix(err.Error(), "ClientException: Task definition size") {
				return // ECS's additions can push a definition at the limit over it
			}
			t.Fatalf("stored definition refused on re-registration: %v\n%s", err, first)
		}
		if second, _ := json.Marshal(again); string(second) != string(first) {
			t.Fatalf("re-registration changed the definition:\n%s\n%s", first, second)
		}
	})
}
