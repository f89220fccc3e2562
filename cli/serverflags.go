package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/gantry-dev/gantry/cli/cliflags"
	"github.com/gantry-dev/gantry/server"
)

// serverFlags are the flags dev and server share.
type serverFlags struct {
	listen, dataDir, region, accountID string
	accessKeyID, secretAccessKey       string
	logLevel                           string
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
	f.registry.register(fs)
}

func (f *serverFlags) logger(stderr io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})), nil
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
	}
	f.registry.apply(&cfg)
	return cfg
}
