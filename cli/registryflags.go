package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/gantry-dev/gantry/server"
)

// registryFlags configure the built-in registry and how it is reached;
// dev and server share them (serverFlags).
type registryFlags struct {
	advertise, tlsCert, tlsKey string
	storage                    map[string]map[string]any
}

func (f *registryFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.advertise, "advertise-address", "",
		"host[:port] clients and container engines reach this server at, used in repository URIs (default: the listen address)")
	fs.StringVar(&f.tlsCert, "tls-cert", "",
		"certificate (PEM) to serve TLS on the listen port, next to plain HTTP, so engines on other hosts can use the registry")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key (PEM) of --tls-cert")
	fs.Func("registry-storage", `JSON file with the registry's storage driver and its parameters, e.g. {"s3": {"bucket": "images", "region": "eu-west-1"}} (default: <data-dir>/registry)`,
		func(path string) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var st map[string]map[string]any
			if err := json.Unmarshal(b, &st); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if len(st) != 1 {
				return fmt.Errorf("%s: want exactly one storage driver, found %d", path, len(st))
			}
			f.storage = st
			return nil
		})
}

func (f *registryFlags) apply(cfg *server.Config) {
	cfg.AdvertiseAddress = f.advertise
	cfg.TLSCertFile, cfg.TLSKeyFile = f.tlsCert, f.tlsKey
	cfg.RegistryStorage = f.storage
}
