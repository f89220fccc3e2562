package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/gantry-dev/gantry/agentapi"
	"github.com/gantry-dev/gantry/cli/cliflags"
	"github.com/gantry-dev/gantry/controller"
	"github.com/gantry-dev/gantry/server"
)

// serverFlags are the flags dev and server share.
type serverFlags struct {
	listen, dataDir, region, accountID string
	accessKeyID, secretAccessKey       string
	logLevel                           string
	heartbeatTimeout, leaderTTL        time.Duration
	registry                           registryFlags // cli/registryflags.go
}

func (f *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "listen", server.DefaultListen, "address for the API (host:port)")
	fs.StringVar(&f.dataDir, "data-dir", cliflags.DefaultDataDir(), "directory for state and generated credentials")
	fs.StringVar(&f.region, "region", "us-east-1", "AWS region the API answers as")
	fs.StringVar(&f.accountID, "account-id", "000000000000", "12-digit AWS account ID used in ARNs")
	fs.StringVar(&f.accessKeyID, "access-key-id", os.Getenv("GANTRY_ACCESS_KEY_ID"), "access key ID clients sign with (env GANTRY_ACCESS_KEY_ID)")
	fs.StringVar(&f.secretAccessKey, "secret-access-key", os.Getenv("GANTRY_SECRET_ACCESS_KEY"), "secret access key (env GANTRY_SECRET_ACCESS_KEY)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&f.heartbeatTimeout, "heartbeat-timeout", agentapi.DefaultHeartbeatTimeout,
		"how long an agent may miss heartbeats before it shows disconnected and its service tasks are replaced elsewhere (whole seconds)")
	fs.DurationVar(&f.leaderTTL, "leader-ttl", controller.DefaultLeaderTTL,
		"how long the controllers stay with a server that died before another server sharing the etcd cluster takes over (whole seconds)")
	f.registry.register(fs)
}

func (f *serverFlags) logger(stderr io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})), nil
}

// check refuses flag values the server cannot use.
func (f *serverFlags) check() error {
	// etcd leases count whole seconds.
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--heartbeat-timeout", f.heartbeatTimeout}, {"--leader-ttl", f.leaderTTL}} {
		if d.v < time.Second || d.v%time.Second != 0 {
			return fmt.Errorf("%s %v: must be a whole number of seconds, at least 1s", d.name, d.v)
		}
	}
	return nil
}

func (f *serverFlags) config(log *slog.Logger) server.Config {
	cfg := server.Config{
		Listen:          f.listen,
		DataDir:         f.dataDir,
		Region:          f.region,
		AccountID:       f.accountID,
		AccessKeyID:     f.accessKeyID,
		SecretAccessKey: f.secretAccessKey,
		Logger:          log,

		HeartbeatTimeout: f.heartbeatTimeout,
		LeaderTTL:        f.leaderTTL,
	}
	f.registry.apply(&cfg)
	return cfg
}
