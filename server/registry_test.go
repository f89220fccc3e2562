package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-dev/gantry/internal/testcluster"
	"github.com/gantry-dev/gantry/server"
)

func startServer(t *testing.T, edit func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Region: testcluster.Region, AccountID: testcluster.AccountID,
		AccessKeyID: testcluster.AccessKeyID, SecretAccessKey: testcluster.SecretAccessKey,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func ecrClient(srv *server.Server, endpoint string, hc *http.Client) *awsecr.Client {
	cfg := (&testcluster.Cluster{}).AWSConfig()
	if hc != nil {
		cfg.HTTPClient = hc
	}
	return awsecr.NewFromConfig(cfg, func(o *awsecr.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// selfSigned writes a certificate for 127.0.0.1 and returns its files and
// a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gantry test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile, pool
}

// TestTLSAndPlainOnOnePort: with a certificate, the listen port serves TLS
// and plain HTTP side by side; the registry works over TLS end to end.
func TestTLSAndPlainOnOnePort(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	srv := startServer(t, func(c *server.Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile })
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, tc := range []struct {
		url    string
		client *http.Client
	}{{"http://" + srv.Addr() + "/healthz", http.DefaultClient}, {"https://" + srv.Addr() + "/healthz", tlsClient}} {
		resp, err := tc.client.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok\n" {
			t.Fatalf("%s: %d %q", tc.url, resp.StatusCode, b)
		}
	}
	// A client that does not trust the certificate fails its handshake;
	// the server carries on.
	if _, err := http.Get("https://" + srv.Addr() + "/healthz"); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}

	ctx := context.Background()
	api := ecrClient(srv, "https://"+srv.Addr(), tlsClient)
	if _, err := api.CreateRepository(ctx, &awsecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	tok, err := api.GetAuthorizationToken(ctx, &awsecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(tok.AuthorizationData[0].ProxyEndpoint); got != "https://"+srv.RegistryHost() {
		t.Errorf("proxyEndpoint %q", got)
	}
	raw, _ := base64.StdEncoding.DecodeString(*tok.AuthorizationData[0].AuthorizationToken)
	_, pass, _ := strings.Cut(string(raw), ":")
	img, err := random.Image(1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(srv.RegistryHost() + "/app:v1") // not Insecure: TLS only
	opts := []remote.Option{remote.WithAuth(&authn.Basic{Username: "AWS", Password: pass}), remote.WithTransport(tlsClient.Transport)}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push over TLS: %v", err)
	}
	got, err := remote.Image(ref, opts...)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled %s, want %s", d, want)
	}
	ls, _ := got.Layers()
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
}

func TestAdvertiseAddress(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(c *server.Config) { c.AdvertiseAddress = "registry.example.com" })
	_, port, _ := net.SplitHostPort(srv.Addr())
	if got, want := srv.RegistryHost(), "registry.example.com:"+port; got != want {
		t.Fatalf("registry host %q, want %q", got, want)
	}
	out, err := ecrClient(srv, srv.URL(), nil).CreateRepository(context.Background(), &awsecr.CreateRepositoryInput{RepositoryName: aws.String("team/app")})
	if err != nil || aws.ToString(out.Repository.RepositoryUri) != "registry.example.com:"+port+"/team/app" {
		t.Fatalf("repositoryUri: %+v, %v", out, err)
	}
	srv = startServer(t, func(c *server.Config) { c.AdvertiseAddress = "[::1]:5000" })
	if srv.RegistryHost() != "[::1]:5000" {
		t.Fatalf("registry host %q", srv.RegistryHost())
	}
	for _, bad := range []string{"http://registry.example.com", "registry.example.com/x", "host:port", "a b"} {
		_, err := server.New(server.Config{DataDir: t.TempDir(), AccessKeyID: "a", SecretAccessKey: "b", AdvertiseAddress: bad})
		if err == nil {
			t.Errorf("advertise address %q accepted", bad)
		}
	}
}

// TestRegistryConfigErrors: a bad registry configuration is an error from
// Start, never a panic.
func TestRegistryConfigErrors(t *testing.T) {
	t.Parallel()
	for name, storage := range map[string]map[string]map[string]any{
		"UnknownDriver":   {"nosuchdriver": {}},
		"TwoDrivers":      {"filesystem": {"rootdirectory": t.TempDir()}, "inmemory": {}},
		"ReservedKey":     {"filesystem": {"rootdirectory": t.TempDir()}, "delete": {"enabled": false}},
		"S3WithoutBucket": {"s3": {"region": "us-east-1"}},
	} {
		t.Run(name, func(t *testing.T) {
			srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), AccessKeyID: "a", SecretAccessKey: "b",
				RegistryStorage: storage, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Start(context.Background()); err == nil {
				srv.Close()
				t.Fatal("Start accepted the storage configuration")
			} else {
				t.Log(err)
			}
		})
	}
	if _, err := server.New(server.Config{AccessKeyID: "a", SecretAccessKey: "b", Etcd: server.EtcdConfig{Endpoints: []string{"x:1"}}}); err == nil {
		t.Error("no data dir and no registry storage accepted")
	}
	if _, err := server.New(server.Config{DataDir: t.TempDir(), AccessKeyID: "a", SecretAccessKey: "b", TLSCertFile: "c.pem"}); err == nil {
		t.Error("a certificate without a key accepted")
	}
}
