package registry

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/gorilla/mux"

	// The storage drivers Gantry offers: the local disk by default, S3 when
	// configured (Config.Storage).
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"

	"github.com/gantry-dev/gantry/ecr"
	"github.com/gantry-dev/gantry/state"
)

// TokenTTL is how long an authorization token is valid, as with ECR.
const TokenTTL = 12 * time.Hour

// MaxCatalogEntries bounds one page of GET /v2/_catalog (the embedded
// application refuses every page if this is left at zero).
const MaxCatalogEntries = 1000

// Config configures the registry.
type Config struct {
	// RootDirectory is where the default filesystem storage keeps images
	// (the server passes <data-dir>/registry).
	RootDirectory string
	// Storage, when set, replaces the filesystem: distribution's `storage`
	// configuration section with exactly one driver, for example
	// {"s3": {"bucket": "images", "region": "eu-west-1"}}. Servers sharing
	// an etcd cluster must share their storage too.
	Storage map[string]map[string]any

	Store *state.Store
	Scope ecr.Scope
	// Secret keys authorization tokens and upload state. Servers sharing
	// storage must use the same one (the server passes its secret access
	// key, which they share already).
	Secret string
	// InstanceToken reports whether a password is a valid agent instance
	// token; those may pull, never push. Nil: only ECR tokens are accepted.
	InstanceToken func(ctx context.Context, token string) (bool, error)

	Logger *slog.Logger
	Now    func() time.Time // default time.Now
}

// Registry serves /v2/ and answers the ECR API's questions about images.
// It is safe for concurrent use.
type Registry struct {
	store    *state.Store
	scope    ecr.Scope
	app      *handlers.App
	driver   storagedriver.StorageDriver
	ns       distribution.Namespace
	router   *mux.Router
	tokenKey []byte
	instance func(context.Context, string) (bool, error)
	log      *slog.Logger
	now      func() time.Time
}

// New opens the storage and builds the registry. A bad configuration is an
// error, never a panic.
func New(cfg Config) (*Registry, error) {
	if cfg.Store == nil {
		return nil, errors.New("registry: a store is required")
	}
	if cfg.Secret == "" {
		return nil, errors.New("registry: a secret is required")
	}
	r := &Registry{
		store:    cfg.Store,
		scope:    cfg.Scope,
		router:   v2.Router(),
		tokenKey: derive(cfg.Secret, tokenPurpose),
		instance: cfg.InstanceToken,
		log:      cfg.Logger,
		now:      cfg.Now,
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	routeLogs(r.log)

	st, driverName, params, err := storageConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc := &configuration.Configuration{Storage: st}
	dc.HTTP.Secret = hex.EncodeToString(derive(cfg.Secret, "gantry registry upload state v1"))
	// Relative Location headers: clients resolve them against the URL they
	// used, which stays right behind proxies and on the TLS-sniffing port.
	dc.HTTP.RelativeURLs = true
	dc.HTTP.Debug.Prometheus.Enabled = false
	dc.Catalog.MaxEntries = MaxCatalogEntries
	dc.Tags.MaxTags = 1000

	if r.app, err = newApp(dc); err != nil {
		return nil, err
	}
	// A second view of the same storage for the ECR API's reads and
	// deletes. Neither view caches blob descriptors, so what one writes
	// the other sees at once.
	ctx := context.Background()
	if r.driver, err = factory.Create(ctx, driverName, params); err != nil {
		r.app.Shutdown()
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	if r.ns, err = storage.NewRegistry(ctx, r.driver, storage.EnableDelete,
		storage.EnableValidateImageIndexImagesExist, storage.ManifestURLsAllowRegexp(noURLs)); err != nil {
		r.app.Shutdown()
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	return r, nil
}

// newApp builds the distribution application, turning the panics NewApp
// uses for configuration errors into an error.
func newApp(dc *configuration.Configuration) (app *handlers.App, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		if p := recover(); p != nil {
			cancel() // stops the upload purger NewApp may have started
			app, err = nil, fmt.Errorf("registry configuration: %v", p)
		}
	}()
	app = handlers.NewApp(ctx, dc)
	return app, nil
}

// Close stops the application's background work (the upload purger).
func (r *Registry) Close() error { return r.app.Shutdown() }

// Reserved storage sections: Gantry sets these itself.
var reservedStorageKeys = map[string]bool{"maintenance": true, "cache": true, "delete": true, "redirect": true, "tag": true}

func storageConfig(cfg Config) (configuration.Storage, string, map[string]any, error) {
	st := configuration.Storage{}
	var name string
	if len(cfg.Storage) == 0 {
		if cfg.RootDirectory == "" {
			return nil, "", nil, errors.New("registry: a root directory or a storage driver is required")
		}
		if err := os.MkdirAll(cfg.RootDirectory, 0o700); err != nil {
			return nil, "", nil, fmt.Errorf("registry storage: %w", err)
		}
		name = "filesystem"
		st[name] = configuration.Parameters{"rootdirectory": cfg.RootDirectory}
	} else {
		for k, v := range cfg.Storage {
			if reservedStorageKeys[k] {
				return nil, "", nil, fmt.Errorf("registry storage: the %q section is set by Gantry", k)
			}
			if name != "" {
				return nil, "", nil, fmt.Errorf("registry storage: more than one driver (%s, %s)", name, k)
			}
			name = k
			st[k] = configuration.Parameters(v)
		}
	}
	// Deletion through the ECR API and /v2/ (manifests and tags only;
	// blob deletes are refused in front). No redirects: every byte goes
	// through the authenticated front, so a remote engine needs no route
	// to the storage. Abandoned uploads go after a week, as by default.
	st["delete"] = configuration.Parameters{"enabled": true}
	st["redirect"] = configuration.Parameters{"disable": true}
	st["maintenance"] = configuration.Parameters{"uploadpurging": map[any]any{
		"enabled": true, "age": "168h", "interval": "24h", "dryrun": false,
	}}
	params := map[string]any(st[name])
	return st, name, params, nil
}

// derive is a key for one purpose from the configured secret.
func derive(secret, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
