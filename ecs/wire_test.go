package ecs

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/internal/awsproto"
)

// registerTaskDefinition is a RegisterTaskDefinition request as the AWS CLI
// sends it.
const registerTaskDefinition = `{
  "family": "web",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "cpu": "256",
  "memory": "512",
  "tags": [{"key": "team", "value": "platform"}],
  "containerDefinitions": [{
    "name": "nginx",
    "image": "nginx:1.27",
    "cpu": 0,
    "memory": 512,
    "essential": true,
    "environment": [],
    "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web"}}
  }]
}`

func TestRegisterTaskDefinitionRoundTrip(t *testing.T) {
	var req RegisterTaskDefinitionRequest
	if err := json.Unmarshal([]byte(registerTaskDefinition), &req); err != nil {
		t.Fatal(err)
	}
	if err := req.Validate(""); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	cd := req.ContainerDefinitions[0]
	if req.NetworkMode != NetworkModeAwsvpc || cd.Memory == nil || *cd.Memory != 512 || cd.Essential == nil || !*cd.Essential ||
		cd.PortMappings[0].Protocol != TransportProtocolTCP || cd.LogConfiguration.LogDriver != LogDriverAwslogs {
		t.Errorf("decoded request: %+v", req)
	}

	out, err := json.Marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	c := got["containerDefinitions"].([]any)[0].(map[string]any)
	if env, ok := c["environment"].([]any); !ok || len(env) != 0 {
		t.Errorf("environment = %#v, want [] kept", c["environment"])
	}
	if _, ok := c["memoryReservation"]; ok {
		t.Error("unset memoryReservation was sent")
	}
	if c["cpu"] != 0.0 {
		t.Errorf("cpu = %#v, want 0 kept", c["cpu"])
	}
	if c["memory"] != 512.0 || c["essential"] != true {
		t.Errorf("memory/essential = %#v/%#v", c["memory"], c["essential"])
	}
	for _, unset := range []string{"ipcMode", "pidMode", "volumes", "placementConstraints", "runtimePlatform"} {
		if _, ok := got[unset]; ok {
			t.Errorf("unset %s was sent", unset)
		}
	}
	// Decoding what we sent gives the same request back.
	var again RegisterTaskDefinitionRequest
	if err := json.Unmarshal(out, &again); err != nil {
		t.Fatal(err)
	}
	if out2, _ := json.Marshal(&again); string(out2) != string(out) {
		t.Errorf("second round trip differs:\n%s\n%s", out, out2)
	}
}

func TestRegisterTaskDefinitionValidate(t *testing.T) {
	for _, tc := range []struct {
		name, doc     string
		field, rule   string
		value, errMsg string
	}{
		{name: "missing family", doc: strings.Replace(registerTaskDefinition, `"family": "web",`, "", 1),
			field: "family", rule: awsproto.RuleRequired, errMsg: "family: required member is missing"},
		{name: "invalid networkMode", doc: strings.Replace(registerTaskDefinition, `"awsvpc"`, `"bridged"`, 1),
			field: "networkMode", value: "bridged", rule: "expected one of bridge, host, awsvpc, none",
			errMsg: `networkMode: "bridged" is not a valid value; expected one of bridge, host, awsvpc, none`},
		{name: "enum in a list", doc: strings.Replace(registerTaskDefinition, `["FARGATE"]`, `["FARGATE", "FOO"]`, 1),
			field: "requiresCompatibilities[1]", value: "FOO"},
		{name: "enum in a nested list", doc: strings.Replace(registerTaskDefinition, `"tcp"`, `"sctp"`, 1),
			field: "containerDefinitions[0].portMappings[0].protocol", value: "sctp"},
		{name: "missing nested member", doc: `{"family": "web", "containerDefinitions": [{"name": "a", "secrets": [{"name": "s"}]}]}`,
			field: "containerDefinitions[0].secrets[0].valueFrom", rule: awsproto.RuleRequired,
			errMsg: "containerDefinitions[0].secrets[0].valueFrom: required member is missing"},
		{name: "missing list", doc: `{"family": "web"}`, field: "containerDefinitions", rule: awsproto.RuleRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req RegisterTaskDefinitionRequest
			if err := json.Unmarshal([]byte(tc.doc), &req); err != nil {
				t.Fatalf("%v\n%s", err, tc.doc)
			}
			err := req.Validate("")
			var ve *awsproto.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *awsproto.ValidationError", err)
			}
			if ve.Field != tc.field || ve.Value != tc.value || (tc.rule != "" && ve.Rule != tc.rule) {
				t.Errorf("Validate = %+v, want field %q value %q rule %q", ve, tc.field, tc.value, tc.rule)
			}
			if tc.errMsg != "" && err.Error() != tc.errMsg {
				t.Errorf("Error() = %q, want %q", err.Error(), tc.errMsg)
			}
		})
	}
}

func TestOperationsTable(t *testing.T) {
	op, ok := Operations["RegisterTaskDefinition"]
	if !ok || op.Name != "RegisterTaskDefinition" {
		t.Fatalf("Operations[RegisterTaskDefinition] = %+v", op)
	}
	if _, ok := op.NewInput().(*RegisterTaskDefinitionRequest); !ok {
		t.Errorf("NewInput() = %T", op.NewInput())
	}
	if _, ok := op.NewOutput().(*RegisterTaskDefinitionResponse); !ok {
		t.Errorf("NewOutput() = %T", op.NewOutput())
	}
	if TargetPrefix != "AmazonEC2ContainerServiceV20141113" || SigningName != "ecs" {
		t.Errorf("TargetPrefix, SigningName = %q, %q", TargetPrefix, SigningName)
	}
}
