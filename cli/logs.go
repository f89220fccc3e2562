package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/gantry-dev/gantry/agentapi"
	"github.com/gantry-dev/gantry/cli/cliflags"
)

// runLogs is `gantry logs TASK`: a task's container output, through the
// control plane's logs endpoint (docs/logs.md), with the user's AWS
// credentials as the AWS CLI finds them, else those `gantry dev` generated.
func runLogs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	var o logsOptions
	fs.StringVar(&o.cluster, "cluster", "default", "the task's cluster (name or ARN)")
	fs.StringVar(&o.container, "container", "", "the container's name (needed when the task has several)")
	fs.BoolVar(&o.follow, "follow", false, "keep printing new output until the container exits (or Ctrl-C)")
	fs.BoolVar(&o.follow, "f", false, "short for --follow")
	fs.IntVar(&o.tail, "tail", 0, "print only the last N lines (0: all)")
	fs.StringVar(&o.since, "since", "", "only output since this time (RFC 3339) or this long ago (e.g. 10m)")
	fs.BoolVar(&o.timestamps, "timestamps", false, "prefix each line with its time")
	fs.StringVar(&o.endpoint, "endpoint-url", "", "the Gantry API's URL (default: $AWS_ENDPOINT_URL_ECS, $AWS_ENDPOINT_URL, the profile's endpoint_url, or gantry dev's)")
	fs.StringVar(&o.region, "region", "", "region (default: $AWS_REGION or the profile's)")
	fs.StringVar(&o.profile, "profile", "", "AWS CLI profile (default: $AWS_PROFILE)")
	fs.StringVar(&o.dataDir, "data-dir", cliflags.DefaultDataDir(), "gantry dev's data directory: its credentials are used when no others are found")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gantry logs [flags] TASK\n\nPrints a task's container output (stdout and stderr). TASK is an ID or ARN.\n\nFlags:")
		fs.PrintDefaults()
	}
	// Flags may follow the task, as in `gantry logs TASK --follow`.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	o.task = pos[0]
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := o.run(ctx, stdout); err != nil {
		if ctx.Err() != nil {
			return 0 // Ctrl-C while following
		}
		fmt.Fprintf(stderr, "gantry logs: %v\n", err)
		return 1
	}
	return 0
}

type logsOptions struct {
	task, cluster, container, since    string
	endpoint, region, profile, dataDir string
	follow, timestamps                 bool
	tail                               int
}

func (o *logsOptions) run(ctx context.Context, out io.Writer) error {
	cfg, endpoint, err := o.awsConfig(ctx)
	if err != nil {
		return err
	}
	q := url.Values{"cluster": {o.cluster}, "task": {o.task}}
	if o.container != "" {
		q.Set("container", o.container)
	}
	if o.follow {
		q.Set("follow", "true")
	}
	if o.timestamps {
		q.Set("timestamps", "true")
	}
	if o.tail < 0 {
		return errors.New("--tail must not be negative")
	}
	if o.tail > 0 {
		q.Set("tail", strconv.Itoa(o.tail))
	}
	if o.since != "" {
		since, err := parseSince(o.since, time.Now())
		if err != nil {
			return err
		}
		q.Set("since", since.Format(time.RFC3339Nano))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+agentapi.LogsPath+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	empty := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(empty[:]), "ecs", cfg.Region, time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) == nil && e.Type != "" {
			return fmt.Errorf("%s: %s", e.Type, e.Message)
		}
		return fmt.Errorf("%s answered %s: %s", endpoint, resp.Status, strings.TrimSpace(string(b)))
	}
	_, err = io.Copy(out, resp.Body)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// awsConfig finds credentials, region and endpoint as the AWS CLI does
// (flags, environment, shared config and credentials files), falling back
// to what `gantry dev` wrote in its data dir, and to its default address.
func (o *logsOptions) awsConfig(ctx context.Context) (aws.Config, string, error) {
	var opts []func(*config.LoadOptions) error
	if o.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.profile))
	}
	if o.region != "" {
		opts = append(opts, config.WithRegion(o.region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, "", err
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if o.profile != "" {
			return cfg, "", fmt.Errorf("credentials of profile %s: %w", o.profile, err)
		}
		// No credentials configured: use gantry dev's generated ones.
		kp, rerr := readCredentials(filepath.Join(o.dataDir, "credentials"))
		if rerr != nil {
			return cfg, "", fmt.Errorf("no AWS credentials found (%v), and none in %s (%v)", err, o.dataDir, rerr)
		}
		cfg.Credentials = credentials.NewStaticCredentialsProvider(kp.id, kp.secret, "")
		if o.region == "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
			cfg.Region = devConfigValue(filepath.Join(o.dataDir, "config"), "region")
		}
		if o.endpoint == "" {
			o.endpoint = devConfigValue(filepath.Join(o.dataDir, "config"), "endpoint_url")
		}
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	endpoint := o.endpoint
	if endpoint == "" {
		// The ECS client resolves AWS_ENDPOINT_URL_ECS, AWS_ENDPOINT_URL and
		// the profile's endpoint_url (global or in its services section).
		endpoint = aws.ToString(awsecs.NewFromConfig(cfg).Options().BaseEndpoint)
	}
	if endpoint == "" {
		endpoint = "http://127.0.0.1:4747" // gantry dev's default
	}
	return cfg, endpoint, nil
}

// devConfigValue reads key from the gantry profile of an AWS config file
// (what gantry dev writes in <data-dir>/config), or "".
func devConfigValue(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			in = line == "[profile "+profile+"]"
			continue
		}
		if k, v, ok := strings.Cut(line, "="); in && ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// parseSince takes an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time or a duration such as 10m", s)
	}
	return now.Add(-d), nil
}
