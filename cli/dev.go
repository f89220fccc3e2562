package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/docker/docker/client"

	"github.com/gantry-dev/gantry/agent"
	"github.com/gantry-dev/gantry/agent/runtime/docker"
	"github.com/gantry-dev/gantry/cli/agentcmd"
	"github.com/gantry-dev/gantry/cli/cliflags"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/server"
)

// runDev runs everything on one machine, the way `nomad agent -dev` does:
// the control plane on an embedded etcd, the `default` cluster, and one
// agent in-process against the local Docker engine (DOCKER_HOST honoured).
// Without a reachable engine it still serves the API and says that no agent
// runs. State persists in --data-dir across restarts.
func runDev(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var sf serverFlags
	sf.register(fs)
	noAgent := fs.Bool("no-agent", false, "serve the API only, without the in-process agent")
	var host agentcmd.HostFlags // the in-process agent's, as gantry agent has them
	host.Register(fs)
	if code := cliflags.Parse(fs, args, stderr); code >= 0 {
		return code
	}
	// Refuse bad agent flags before anything starts.
	if err := host.Apply(&agent.Config{}); err != nil {
		fmt.Fprintf(stderr, "gantry dev: %v\n", err)
		return 2
	}
	ext := func(ctx context.Context, srv *server.Server, sf serverFlags, endpoint string, log *slog.Logger) (string, func()) {
		createDefaultCluster(ctx, endpoint, sf, log)
		if *noAgent {
			return "", func() {}
		}
		d := devAgent{host: &host}
		d.start(ctx, srv, sf, endpoint, log)
		return d.status, d.stop
	}
	return serve("dev", sf, server.EtcdConfig{}, ext, stdout, stderr)
}

// createDefaultCluster creates the `default` cluster through the API, as
// the ECS agent does when it starts without a cluster; it is idempotent.
func createDefaultCluster(ctx context.Context, endpoint string, sf serverFlags, log *slog.Logger) {
	api := awsecs.New(awsecs.Options{
		Region:       sf.region,
		Credentials:  credentials.NewStaticCredentialsProvider(sf.accessKeyID, sf.secretAccessKey, ""),
		BaseEndpoint: aws.String(endpoint),
	})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := api.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String(ecs.DefaultClusterName)})
	if err != nil {
		log.Warn("could not create the default cluster", "err", err)
	}
}

// devAgent is gantry dev's in-process agent.
type devAgent struct {
	host   *agentcmd.HostFlags
	status string // what the banner says about it
	cancel context.CancelFunc
	done   chan struct{}
	close  func() error
}

// start runs an agent against the local Docker engine in the default
// cluster, waiting (briefly) until it has registered, so the API is ready to
// run tasks when the banner says so.
func (d *devAgent) start(ctx context.Context, srv *server.Server, sf serverFlags, endpoint string, log *slog.Logger) {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = client.DefaultDockerHost
	}
	noAgent := func(why error) {
		d.status = fmt.Sprintf("No agent runs: no Docker engine is reachable at %s (%v).\n"+
			"The API works, but tasks cannot start. Start Docker (or set DOCKER_HOST) and restart gantry dev,\n"+
			"or join agents from elsewhere: gantry agent --server %s --token-file %s",
			host, why, endpoint, filepath.Join(sf.dataDir, "join-token"))
	}
	rt, err := docker.New(docker.Options{Logger: log, Policy: docker.Policy{AllowPrivileged: d.host.AllowPrivileged}})
	if err != nil {
		noAgent(err)
		return
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	info, err := rt.Info(ictx)
	cancel()
	if err != nil {
		rt.Close()
		noAgent(err)
		return
	}
	cfg := agent.Config{
		Server:           endpoint,
		Cluster:          ecs.DefaultClusterName,
		Token:            srv.JoinToken(),
		DataDir:          filepath.Join(sf.dataDir, "agent"),
		Runtime:          rt,
		AvailabilityZone: sf.region + "a",
		Version:          Version,
		Logger:           log,
	}
	var a *agent.Agent
	err = d.host.Apply(&cfg) // checked before the server started
	if err == nil {
		a, err = agent.New(cfg)
	}
	if err != nil {
		rt.Close()
		d.status = fmt.Sprintf("No agent runs: %v", err)
		return
	}
	actx, acancel := context.WithCancel(ctx)
	d.cancel, d.done, d.close = acancel, make(chan struct{}), rt.Close
	failed := make(chan error, 1)
	go func() {
		defer close(d.done)
		if err := a.Run(actx); err != nil && actx.Err() == nil {
			log.Error("the in-process agent stopped", "err", err)
			failed <- err
		}
	}()
	select {
	case <-a.Ready():
	case err := <-failed:
		d.status = fmt.Sprintf("No agent runs: %v", err)
		return
	case <-time.After(15 * time.Second):
		d.status = "Agent:    still registering (see the log)"
		return
	case <-ctx.Done():
		return
	}
	d.status = fmt.Sprintf("Agent:    container instance %s\n          in cluster %s, running tasks on Docker %s at %s",
		a.ContainerInstanceARN(), ecs.DefaultClusterName, info.EngineVersion, host)
}

// stop ends the agent (its containers keep running) and releases the
// engine client.
func (d *devAgent) stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
	d.close()
}
