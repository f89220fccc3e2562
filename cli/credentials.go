package cli

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// profile is the AWS CLI profile gantry writes into <data-dir>/credentials
// and <data-dir>/config.
const profile = "gantry"

// keyPair is an access key ID and its secret.
type keyPair struct{ id, secret string }

// ensureCredentials returns the key pair the server should accept: the one
// configured by flag or environment, else the one generated on an earlier
// run in dataDir, else a new one written there. generated is true when the
// pair lives in dataDir's files (and so may be printed as file paths).
func ensureCredentials(dataDir string, configured keyPair) (kp keyPair, generated bool, err error) {
	if configured.id != "" || configured.secret != "" {
		if configured.id == "" || configured.secret == "" {
			return kp, false, fmt.Errorf("--access-key-id and --secret-access-key must be given together")
		}
		return configured, false, nil
	}
	path := filepath.Join(dataDir, "credentials")
	if kp, err := readCredentials(path); err == nil {
		return kp, true, nil
	} else if !os.IsNotExist(err) {
		return kp, false, err
	}
	kp = keyPair{id: "GKIA" + randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
		secret: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return kp, false, err
	}
	body := fmt.Sprintf("[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", profile, kp.id, kp.secret)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return kp, false, err
	}
	return kp, true, nil
}

// readCredentials reads the gantry profile from an AWS CLI credentials file.
func readCredentials(path string) (keyPair, error) {
	f, err := os.Open(path)
	if err != nil {
		return keyPair{}, err
	}
	defer f.Close()
	var kp keyPair
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			in = line == "["+profile+"]"
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !in || !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			kp.id = strings.TrimSpace(v)
		case "aws_secret_access_key":
			kp.secret = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return keyPair{}, err
	}
	if kp.id == "" || kp.secret == "" {
		return keyPair{}, fmt.Errorf("%s has no complete [%s] profile; delete it to generate a new key pair", path, profile)
	}
	return kp, nil
}

// writeCLIConfig writes <data-dir>/config for the gantry profile. endpoint_url
// is honoured by AWS CLI 2.13 and later; older CLIs ignore it and need
// --endpoint-url.
func writeCLIConfig(dataDir, region, endpoint string) (string, error) {
	path := filepath.Join(dataDir, "config")
	body := fmt.Sprintf("[profile %s]\nregion = %s\noutput = json\nendpoint_url = %s\n", profile, region, endpoint)
	return path, os.WriteFile(path, []byte(body), 0o600)
}

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
