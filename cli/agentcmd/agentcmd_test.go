package agentcmd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestJoinTokenPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "join-token")
	os.WriteFile(file, []byte("from-file\n"), 0o600)
	t.Setenv("GANTRY_AGENT_TOKEN", "from-env")
	for _, tt := range []struct{ flag, file, want string }{
		{"from-flag", file, "from-flag"},
		{"", file, "from-file"},
		{"", "", "from-env"},
	} {
		if got, err := joinToken(tt.flag, tt.file); err != nil || got != tt.want {
			t.Errorf("joinToken(%q, %q) = %q, %v; want %q", tt.flag, tt.file, got, err, tt.want)
		}
	}
	t.Setenv("GANTRY_AGENT_TOKEN", "")
	if _, err := joinToken("", ""); err == nil || !strings.Contains(err.Error(), "GANTRY_AGENT_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	if _, err := joinToken("", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing token file was accepted")
	}
}

func TestAttributeFlags(t *testing.T) {
	a := attrFlags{}
	for _, s := range []string{"stack=prod", "empty=", "ecs.instance-type=m5.large"} {
		if err := a.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if a["stack"] != "prod" || a["empty"] != "" || a["ecs.instance-type"] != "m5.large" {
		t.Errorf("%v", a)
	}
	for _, bad := range []string{"novalue", "=x"} {
		if err := a.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestGPUIDs(t *testing.T) {
	for in, want := range map[string][]string{"": nil, " ": nil, "GPU-a": {"GPU-a"}, "GPU-a, GPU-b": {"GPU-a", "GPU-b"}} {
		if got, err := gpuIDs(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("gpuIDs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"a,,b", "a,a", ","} {
		if _, err := gpuIDs(bad); err == nil {
			t.Errorf("gpuIDs(%q) accepted", bad)
		}
	}
}
