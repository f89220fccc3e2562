package cli_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// etcdTLS holds file paths of a test CA, a server and a client certificate.
type etcdTLS struct{ ca, serverCert, serverKey, clientCert, clientKey string }

// startEtcd runs an etcd server (Debian's etcd-server) as a separate process
// and returns its client URL.
func startEtcd(t *testing.T, tlsFiles *etcdTLS) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		skipOrFail(t, "no etcd binary on PATH (apt-get install etcd-server)")
	}
	scheme := "http"
	if tlsFiles != nil {
		scheme = "https"
	}
	client := scheme + "://" + freePort(t)
	peer := "http://" + freePort(t)
	args := []string{"--data-dir", t.TempDir(), "--name", "e2e",
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "e2e=" + peer, "--log-level", "error"}
	if tlsFiles != nil {
		args = append(args, "--cert-file", tlsFiles.serverCert, "--key-file", tlsFiles.serverKey,
			"--trusted-ca-file", tlsFiles.ca, "--client-cert-auth")
	}
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	host := strings.TrimPrefix(strings.TrimPrefix(client, "https://"), "http://")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", host); err == nil {
			c.Close()
			return client
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd did not listen within 30s: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const (
	e2eKey    = "GKIAEXTERNALETCD0000"
	e2eSecret = "external-etcd-secret"
)

// TestServersShareExternalEtcd runs two gantry servers on one external etcd:
// each sees the other's writes, and concurrent updates through both lose
// nothing, because every mutation is a revision-guarded transaction.
func TestServersShareExternalEtcd(t *testing.T) {
	etcd := startEtcd(t, nil)
	common := []string{"server", "--etcd-endpoints", etcd, "--access-key-id", e2eKey, "--secret-access-key", e2eSecret}
	a := startGantry(t, freePort(t), append(common, "--data-dir", t.TempDir())...)
	b := startGantry(t, freePort(t), append(common, "--data-dir", t.TempDir())...)
	apiA, apiB := ecsClient(a.endpoint, e2eKey, e2eSecret), ecsClient(b.endpoint, e2eKey, e2eSecret)
	ctx := context.Background()

	cl, err := apiA.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("shared")})
	if err != nil {
		t.Fatal(err)
	}
	l, err := apiB.ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil || len(l.ClusterArns) != 1 {
		t.Fatalf("server B lists %v (err %v)", l, err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		api := apiA
		if i%2 == 1 {
			api = apiB
		}
		wg.Go(func() {
			_, err := api.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: cl.Cluster.ClusterArn,
				Tags: []types.Tag{{Key: aws.String(fmt.Sprintf("k%02d", i)), Value: aws.String("v")}}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	tags, err := apiA.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: cl.Cluster.ClusterArn})
	if err != nil {
		t.Fatal(err)
	}
	// 40 calls would exceed the 50-tag limit only if some were lost and retried; count exactly.
	if len(tags.Tags) != 40 {
		t.Fatalf("after 40 concurrent TagResource calls through two servers: %d tags", len(tags.Tags))
	}

	if _, err := apiB.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("shared")}); err != nil {
		t.Fatal(err)
	}
	d, err := apiA.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"shared"}})
	if err != nil || len(d.Clusters) != 1 || aws.ToString(d.Clusters[0].Status) != "INACTIVE" {
		t.Fatalf("server A after B deleted: %+v (err %v)", d, err)
	}
}

func TestServerWithUnreachableEtcdFailsClearly(t *testing.T) {
	dead := "http://" + freePort(t) // nothing listens here
	cmd := exec.Command(gantryBin, "server", "--listen", freePort(t), "--data-dir", t.TempDir(),
		"--etcd-endpoints", dead, "--access-key-id", "k", "--secret-access-key", "s")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("gantry server with unreachable etcd hung")
	}
	if err == nil || !strings.Contains(string(out), "not reachable") {
		t.Errorf("err=%v output=%s", err, out)
	}
}

// TestServerOnEtcdWithTLS checks --etcd-cacert/--etcd-cert/--etcd-key against
// an etcd that requires client certificates.
func TestServerOnEtcdWithTLS(t *testing.T) {
	files := writeTestPKI(t)
	etcd := startEtcd(t, files)
	p := startGantry(t, freePort(t), "server", "--data-dir", t.TempDir(), "--etcd-endpoints", etcd,
		"--etcd-cacert", files.ca, "--etcd-cert", files.clientCert, "--etcd-key", files.clientKey,
		"--access-key-id", e2eKey, "--secret-access-key", e2eSecret)
	api := ecsClient(p.endpoint, e2eKey, e2eSecret)
	if _, err := api.CreateCluster(context.Background(), &ecs.CreateClusterInput{ClusterName: aws.String("tls")}); err != nil {
		t.Fatal(err)
	}

	// Without a client certificate the same etcd refuses us, and gantry says so.
	cmd := exec.Command(gantryBin, "server", "--listen", freePort(t), "--data-dir", t.TempDir(), "--etcd-endpoints", etcd,
		"--etcd-cacert", files.ca, "--access-key-id", e2eKey, "--secret-access-key", e2eSecret)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("server without a client certificate started: %s", out)
	}
}

// writeTestPKI writes a CA and CA-signed server (127.0.0.1) and client
// certificates into a temporary directory.
func writeTestPKI(t *testing.T) *etcdTLS {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gantry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	f := &etcdTLS{ca: write("ca.pem", "CERTIFICATE", caDER)}
	f.serverCert, f.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	f.clientCert, f.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return f
}
