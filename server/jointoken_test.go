package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/internal/testcluster"
)

// TestJoinTokenFile: with no configured token the server creates one in
// its data directory, readable only by its owner, and keeps it across
// restarts.
func TestJoinTokenFile(t *testing.T) {
	dir := t.TempDir()
	c := testcluster.Start(t, testcluster.Options{DataDir: dir})
	tok := c.Server.JoinToken()
	path := filepath.Join(dir, "join-token")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("join-token file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(path)
	if tok == "" || strings.TrimSpace(string(b)) != tok {
		t.Errorf("token %q, file %q", tok, b)
	}
	if ok, err := c.Server.Store().JoinTokenValid(t.Context(), tok); !ok || err != nil {
		t.Errorf("token not stored: %v", err)
	}
	c.Server.Close()
	again := testcluster.Start(t, testcluster.Options{DataDir: dir})
	if again.Server.JoinToken() != tok {
		t.Errorf("token changed across a restart")
	}
}
