package registry

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/ecr"
)

// Authorization tokens are stateless: "gt1.<expiry, Unix seconds>.<nonce>.<MAC>"
// with an HMAC-SHA256 under a key derived from Config.Secret, so every
// server with the same secret accepts every token any of them issued, and
// checking one costs no store read. They cannot be revoked one by one;
// changing the secret revokes them all.
const tokenPrefix = "gt1."

// IssueToken returns a new authorization token and when it expires
// (TokenTTL from now). ECR's GetAuthorizationToken hands it out as
// base64("AWS:" + token).
func (r *Registry) IssueToken() (token string, expiresAt time.Time) {
	expiresAt = r.now().Add(TokenTTL).Truncate(time.Second)
	return mintToken(r.tokenKey, expiresAt), expiresAt
}

// Token is the token a registry configured with secret would issue to
// expire at expiresAt, for tools that mint tokens offline (and tests).
func Token(secret string, expiresAt time.Time) string {
	return mintToken(derive(secret, tokenPurpose), expiresAt)
}

const tokenPurpose = "gantry registry token v1"

func mintToken(key []byte, expiresAt time.Time) string {
	var nonce [9]byte
	rand.Read(nonce[:])
	body := tokenPrefix + strconv.FormatInt(expiresAt.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(nonce[:])
	return body + "." + mac(key, body)
}

func mac(key []byte, body string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// access is what a credential allows.
type access int

const (
	accessPull access = iota + 1 // agents: GET and HEAD
	accessPush                   // ECR tokens: everything
)

// Authentication failures, answered as ECR answers them.
var (
	errNoCredentials = errors.New("no basic auth credentials")
	errBadToken      = errors.New("invalid authorization token")
	errExpired       = errors.New("Your authorization token has expired. Reauthenticate and try again.")
)

// authenticate checks a request's Basic credentials.
func (r *Registry) authenticate(req *http.Request) (access, error) {
	user, pass, ok := req.BasicAuth()
	if !ok {
		return 0, errNoCredentials
	}
	if user != ecr.RegistryUsername {
		return 0, errBadToken
	}
	if strings.HasPrefix(pass, tokenPrefix) {
		return accessPush, r.verifyToken(pass)
	}
	if r.instance != nil && pass != "" {
		ok, err := r.instance(req.Context(), pass)
		switch {
		case err != nil:
			return 0, err
		case ok:
			return accessPull, nil
		}
	}
	return 0, errBadToken
}

// verifyToken checks a token's MAC, then its expiry.
func (r *Registry) verifyToken(tok string) error {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || !hmac.Equal([]byte(mac(r.tokenKey, tok[:i])), []byte(tok[i+1:])) {
		return errBadToken
	}
	exp, _, _ := strings.Cut(strings.TrimPrefix(tok[:i], tokenPrefix), ".")
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return errBadToken // a token this server signed always parses
	}
	if !r.now().Before(time.Unix(sec, 0)) {
		return errExpired
	}
	return nil
}

// BasicAuth is the Authorization header value for a token, for clients of
// the registry inside Gantry and its tests.
func BasicAuth(token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(ecr.RegistryUsername+":"+token))
}
