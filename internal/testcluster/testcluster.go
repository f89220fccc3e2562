// Package testcluster starts real Gantry control planes for tests: the same
// server.New/Start the CLI uses, on an embedded etcd in a temporary
// directory, with AWS SDK clients pointed at it.
package testcluster

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/gantry-dev/gantry/server"
)

// Test credentials every harness server accepts.
const (
	AccessKeyID     = "GKIATESTACCESSKEY000"
	SecretAccessKey = "test/secret/key/for/gantry/harness/000000"
	Region          = "us-east-1"
	AccountID       = "123456789012"
)

// Cluster is a running control plane.
type Cluster struct {
	Server  *server.Server
	DataDir string
}

// Options adjust a harness server.
type Options struct {
	DataDir string            // reuse a data dir (restart tests); default t.TempDir()
	Etcd    server.EtcdConfig // external etcd; default embedded
	// HeartbeatTimeout for agents (default the server's 10 s; tests of
	// disconnection use 1 s, etcd's smallest lease).
	HeartbeatTimeout time.Duration
}

// Start runs a control plane for the test's lifetime.
func Start(t testing.TB, opts ...Options) *Cluster {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(server.Config{
		Listen:          "127.0.0.1:0",
		DataDir:         o.DataDir,
		Region:          Region,
		AccountID:       AccountID,
		AccessKeyID:     AccessKeyID,
		SecretAccessKey: SecretAccessKey,
		Etcd:            o.Etcd,
		Logger:          log,

		HeartbeatTimeout: o.HeartbeatTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &Cluster{Server: srv, DataDir: o.DataDir}
}

// AWSConfig is an SDK config signed with the harness credentials.
func (c *Cluster) AWSConfig() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		// Tests assert on first answers: an API error (throttling and 5xx
		// included) is never retried, so none is hidden. A broken
		// connection is, as the SDK does by default: Go's HTTP client can
		// lose a keep-alive connection under it mid-read (aws-sdk-go-v2
		// #2737), which says nothing about the server.
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.Retryables = []retry.IsErrorRetryable{retry.NoRetryCanceledError{}, retry.RetryableConnectionError{}}
			})
		},
	}
}

// ECS is an ECS client for this cluster.
func (c *Cluster) ECS() *ecs.Client {
	return ecs.NewFromConfig(c.AWSConfig(), func(o *ecs.Options) { o.BaseEndpoint = aws.String(c.Server.URL()) })
}

// RequireE2E reports whether tests needing outside programs (Docker, the AWS
// CLI, etcd) must fail instead of skipping when those are missing; CI sets
// GANTRY_REQUIRE_E2E=1.
func RequireE2E() bool { return os.Getenv("GANTRY_REQUIRE_E2E") == "1" }

// SkipOrFail skips the test with why, or fails it when GANTRY_REQUIRE_E2E=1.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if RequireE2E() {
		t.Fatalf("%s (GANTRY_REQUIRE_E2E=1, so this is a failure, not a skip)", why)
	}
	t.Skip(why)
}

// AWSCLI returns the path of AWS CLI v2: /usr/bin/aws (Debian's awscli), in
// preference to an older v1 that may come first on PATH.
func AWSCLI(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/aws", "aws"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "--version").CombinedOutput()
		if err == nil && len(out) > 8 && string(out[:8]) == "aws-cli/" && out[8] == '2' {
			return path
		}
	}
	SkipOrFail(t, "AWS CLI v2 not found (apt-get install awscli)")
	return ""
}
