package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                  now.Add(-10 * time.Minute),
		"1h30m":                now.Add(-90 * time.Minute),
		"2026-11-21T11:00:00Z": time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC),
	} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5m", ""} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}

// With no AWS credentials anywhere, gantry logs uses what gantry dev wrote
// in its data dir: the key pair, the region and the endpoint.
func TestLogsFallsBackToDevCredentials(t *testing.T) {
	home := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
		"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECS"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("HOME", home)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	kp, _, err := ensureCredentials(dir, keyPair{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writeCLIConfig(dir, "eu-west-1", "http://127.0.0.1:4999"); err != nil {
		t.Fatal(err)
	}
	o := &logsOptions{dataDir: dir}
	cfg, endpoint, err := o.awsConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != kp.id || cfg.Region != "eu-west-1" || endpoint != "http://127.0.0.1:4999" {
		t.Errorf("creds %v %v, region %q, endpoint %q", creds.AccessKeyID, err, cfg.Region, endpoint)
	}

	// Credentials in the environment win, with the endpoint from the flag.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	o = &logsOptions{dataDir: dir, endpoint: "http://gantry:4747", region: "us-west-2"}
	cfg, endpoint, err = o.awsConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds, _ := cfg.Credentials.Retrieve(context.Background()); creds.AccessKeyID != "AKIAENV" || cfg.Region != "us-west-2" || endpoint != "http://gantry:4747" {
		t.Errorf("creds %v, region %q, endpoint %q", creds.AccessKeyID, cfg.Region, endpoint)
	}
}

func TestLogsUsage(t *testing.T) {
	var out, errOut strings.Builder
	if code := runLogs(nil, &out, &errOut); code != 2 {
		t.Errorf("no task: exit %d", code)
	}
	if code := runLogs([]string{"a", "b"}, &out, &errOut); code != 2 {
		t.Errorf("two tasks: exit %d", code)
	}
}
