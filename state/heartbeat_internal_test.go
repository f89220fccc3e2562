package state

import (
	"encoding/json"
	"testing"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/scheduler"
)

// instanceStatus must read what encoding/json would, from records as the
// store writes them, nested "status" members and look-alike strings
// notwithstanding.
func TestInstanceStatus(t *testing.T) {
	t.Parallel()
	rec := InstanceRecord{
		ContainerInstance: ecs.ContainerInstance{
			ContainerInstanceARN: "arn:aws:ecs:us-east-1:123456789012:container-instance/c/0123",
			Attachments:          []ecs.Attachment{{ID: "a", Status: "ATTACHED", Type: "status"}},
			Attributes:           []ecs.Attribute{{Name: "status", Value: "status"}, {Name: `a "quoted\\" name`, Value: `{"status":"NO"}`}},
			StatusReason:         `"status":"NO"`,
		},
		TokenHash: "status",
		Held:      map[string]scheduler.Held{"status": {Group: "status"}},
	}
	for _, status := range []string{ecs.InstanceStatusActive, ecs.InstanceStatusDraining, ecs.InstanceStatusInactive, "", `esc"aped`} {
		rec.Status = status
		b, err := json.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := instanceStatus(b)
		if err != nil || got != status {
			t.Errorf("status %q: got %q, %v from %s", status, got, err, b)
		}
	}
	if _, err := instanceStatus([]byte(`{"status":`)); err == nil {
		t.Error("truncated record: no error")
	}
}
