package sigv4

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/gantry-dev/gantry/internal/awsproto"
)

// Credentials looks up the secret key for an access key ID.
type Credentials interface {
	SecretKey(accessKeyID string) (secret string, ok bool)
}

// StaticCredentials maps access key IDs to secret keys.
type StaticCredentials map[string]string

// SecretKey implements Credentials.
func (c StaticCredentials) SecretKey(accessKeyID string) (string, bool) {
	s, ok := c[accessKeyID]
	return s, ok
}

// Verifier checks SigV4 Authorization headers. Its fields are read-only once
// it is in use; it is safe for concurrent use.
type Verifier struct {
	Region      string // requests must be scoped to this region; "" rejects all
	Credentials Credentials
	Now         func() time.Time // nil => time.Now
	MaxSkew     time.Duration    // 0 => 5 * time.Minute
}

// Error codes, as AWS's JSON-protocol ("coral") services send them.
//
// Status: all four use 400, the awsproto default. Evidence: these JSON 1.0/1.1
// services answer auth failures with 400 on the wire — ECS via ecs-cli
// ("UnrecognizedClientException ... status code: 400",
// github.com/aws-azure-login/aws-azure-login/issues/37), Cognito
// ("resulted in a `400 Bad Request`", ArranJacques/laravel-aws-cognito-auth#25),
// DynamoDB (yegor256/s3auth#244), Kinesis and ECR for InvalidSignatureException
// (remind101/logspout-kinesis#21, upmc-enterprises/registry-creds#24), and the
// ECS wording of "Signature expired" (fabfuel/ecs-deploy#126). The 403s found
// belong to other protocols: Query-protocol "Common Errors" pages
// (MissingAuthenticationToken, InvalidClientTokenId), API Gateway, and
// REST-JSON Lambda (iann0036/iamlive#58). No wire capture of
// MissingAuthenticationTokenException from a JSON 1.1 service was found; it
// follows its siblings at 400.
const (
	codeMissingToken = "MissingAuthenticationTokenException"
	codeIncomplete   = "IncompleteSignatureException"
	codeInvalid      = "InvalidSignatureException"
	codeUnrecognized = "UnrecognizedClientException"
)

const (
	algorithm     = "AWS4-HMAC-SHA256"
	terminator    = "aws4_request"
	amzDateLayout = "20060102T150405Z"

	msgMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// Verify checks r's Authorization header against body (the full request body,
// already read by the caller) for the given service signing name ("ecs",
// "ecr", ...). It returns the access key ID on success, or an *awsproto.Error
// with AWS's code.
//
// Checks that need no secret (form, scope, clock) run before the credential
// lookup, so garbage never reaches the credential store.
func (v *Verifier) Verify(r *http.Request, body []byte, service string) (accessKeyID string, err error) {
	if r.URL != nil && r.URL.RawQuery != "" && r.URL.Query().Has("X-Amz-Algorithm") {
		return "", awsproto.Errorf(codeIncomplete, "presigned requests are not supported")
	}
	authz := r.Header["Authorization"]
	if len(authz) == 0 || strings.TrimSpace(authz[0]) == "" {
		return "", awsproto.Errorf(codeMissingToken, "Missing Authentication Token")
	}
	if len(authz) > 1 {
		return "", awsproto.Errorf(codeIncomplete, "Only one Authorization header may be sent.")
	}
	a, perr := parseAuthorization(authz[0])
	if perr != nil {
		return "", perr
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if m := a.missing(amzDate != "" || r.Header.Get("Date") != ""); m != "" {
		return "", awsproto.Errorf(codeIncomplete, "%sAuthorization=%s", m, authz[0])
	}
	if a.algorithm != algorithm {
		return "", awsproto.Errorf(codeIncomplete, "Unsupported AWS 'algorithm': '%s'.", a.algorithm)
	}
	if strings.Count(a.credential, "/") != 4 {
		return "", awsproto.Errorf(codeIncomplete,
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", a.credential)
	}
	keyID, rest, _ := strings.Cut(a.credential, "/")
	scopeDate, rest, _ := strings.Cut(rest, "/")
	scopeRegion, rest, _ := strings.Cut(rest, "/")
	scopeService, scopeTerm, _ := strings.Cut(rest, "/")

	if !hasName(a.signedHeaders, "host") {
		return "", awsproto.Errorf(codeIncomplete, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if amzDate == "" {
		// The SDK signer always writes and signs X-Amz-Date, so a request
		// dated only by Date cannot be reproduced. Every AWS SDK and the CLI
		// send X-Amz-Date.
		return "", awsproto.Errorf(codeIncomplete,
			"Authorization header requires existence of a 'X-Amz-Date' header; signing with only a 'Date' header is not supported.")
	}
	if !hasName(a.signedHeaders, "x-amz-date") {
		return "", awsproto.Errorf(codeIncomplete, "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
	}
	t, ok := parseAmzDate(amzDate)
	if !ok {
		return "", awsproto.Errorf(codeIncomplete,
			"Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", amzDate)
	}

	// AWS concatenates the scope complaints, hence the trailing spaces.
	var scopeMsg string
	if scopeRegion != v.Region {
		scopeMsg += "Credential should be scoped to a valid region, not '" + scopeRegion + "'. "
	}
	if scopeService != service {
		scopeMsg += "Credential should be scoped to correct service: '" + service + "'. "
	}
	if scopeTerm != terminator {
		scopeMsg += "Credential should be scoped with a valid terminator: '" + terminator + "', not '" + scopeTerm + "'. "
	}
	if scopeMsg != "" {
		return "", awsproto.Errorf(codeInvalid, "%s", scopeMsg)
	}
	if scopeDate != amzDate[:8] {
		return "", awsproto.Errorf(codeInvalid,
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			scopeDate, amzDate[:8], amzDate)
	}
	if err := v.checkSkew(t); err != nil {
		return "", err
	}

	secret, known := "", false
	if v.Credentials != nil {
		secret, known = v.Credentials.SecretKey(keyID)
	}
	if !known {
		return "", awsproto.Errorf(codeUnrecognized, "The security token included in the request is invalid.")
	}

	// The canonical request always carries the hash of the body we got, so a
	// client-supplied X-Amz-Content-Sha256 can never stand in for it.
	sum := sha256.Sum256(body)
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], sum[:])
	payloadHash := string(hexSum[:])
	if hasName(a.signedHeaders, "x-amz-content-sha256") &&
		strings.TrimSpace(r.Header.Get("X-Amz-Content-Sha256")) != payloadHash {
		return "", awsproto.Errorf(codeInvalid, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}

	cp := signingCopy(r, a.signedHeaders, len(body))
	// A fresh signer per call: the SDK's derived-key cache is keyed by access
	// key ID and day, not by secret, so a shared signer would keep accepting a
	// rotated-out secret until UTC midnight (TestSecretRotation). The cache is
	// not pluggable; deriving costs about a quarter of Verify's CPU.
	if err := v4.NewSigner().SignHTTP(r.Context(),
		aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret},
		cp, payloadHash, scopeService, scopeRegion, t); err != nil {
		return "", awsproto.Errorf("InternalFailure", "could not compute the request signature")
	}
	want, werr := parseAuthorization(cp.Header.Get("Authorization"))
	// The signer decides for itself which headers to sign; if that set differs
	// from the client's (a signed header missing from the request, or one the
	// SDK cannot express such as "content-length: 0"), the signatures cannot
	// be compared and the request is rejected rather than guessed at.
	if werr != nil || want.signedHeaders != a.signedHeaders ||
		subtle.ConstantTimeCompare([]byte(want.signature), []byte(a.signature)) != 1 {
		return "", awsproto.Errorf(codeInvalid, "%s", msgMismatch)
	}
	return keyID, nil
}

// signingCopy builds the request the SDK signer re-signs: method, path and
// query of r, Host from r.Host, and only the headers the client signed.
//
// Headers go in under their lower-case names. The SDK signer skips
// Authorization, User-Agent, X-Amzn-Trace-Id, Expect and Transfer-Encoding,
// but matches that list against the exact map key (canonical form), so a
// lower-case key is signed like any other; other SDKs (e.g. Java v1 signs
// User-Agent) may sign some of these, and a server has to follow the client's
// SignedHeaders, not the Go SDK's policy. The result's SignedHeaders is still
// compared with the client's, so a change in that SDK detail fails closed.
func signingCopy(r *http.Request, signed string, bodyLen int) *http.Request {
	h := make(http.Header, strings.Count(signed, ";")+2)
	for k, vv := range r.Header {
		name, ok := signedName(signed, k)
		if !ok {
			continue
		}
		switch name {
		case "host", "content-length", "x-amz-date", "authorization":
			// host comes from r.Host and content-length from ContentLength;
			// the signer writes X-Amz-Date itself from the signing time (the
			// same instant, parsed strictly, so the value round-trips), and
			// the Authorization header cannot have signed itself.
			continue
		}
		if prev, dup := h[name]; dup {
			// Same name under differently-cased keys: join, without writing
			// into r's slices.
			h[name] = append(slices.Clip(prev), vv...)
		} else {
			h[name] = vv
		}
	}
	// net/http moves Transfer-Encoding out of the header map of server
	// requests (a chunked body from the CLI, for one).
	if _, ok := h["transfer-encoding"]; !ok && len(r.TransferEncoding) > 0 && hasName(signed, "transfer-encoding") {
		h["transfer-encoding"] = r.TransferEncoding
	}

	var u url.URL
	if r.URL != nil {
		u = *r.URL // the signer rewrites RawQuery; r's URL stays untouched
	}
	u.Scheme = "http"
	if r.TLS != nil {
		u.Scheme = "https" // only decides which default port the signer strips from Host
	}
	u.Host = r.Host

	// The signer signs content-length iff ContentLength > 0, from that field.
	var n int64
	if hasName(signed, "content-length") {
		n = int64(bodyLen)
	}
	return &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: h, ContentLength: n}
}

func (v *Verifier) checkSkew(t time.Time) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	n := now().UTC()
	skew := v.MaxSkew
	if skew <= 0 {
		skew = 5 * time.Minute
	}
	if lo := n.Add(-skew); t.Before(lo) {
		return awsproto.Errorf(codeInvalid, "Signature expired: %s is now earlier than %s (%s - %s.)",
			t.Format(amzDateLayout), lo.Format(amzDateLayout), n.Format(amzDateLayout), skewText(skew))
	}
	if hi := n.Add(skew); t.After(hi) {
		return awsproto.Errorf(codeInvalid, "Signature not yet current: %s is still later than %s (%s + %s.)",
			t.Format(amzDateLayout), hi.Format(amzDateLayout), n.Format(amzDateLayout), skewText(skew))
	}
	return nil
}

// skewText renders the window like AWS's "5 min".
func skewText(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min"
	}
	return d.String()
}

// parseAmzDate accepts exactly the form the signer writes back, so the
// X-Amz-Date it signs equals the client's byte for byte.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != len(amzDateLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(amzDateLayout, s)
	if err != nil {
		return time.Time{}, false
	}
	var buf [len(amzDateLayout)]byte
	if string(t.AppendFormat(buf[:0], amzDateLayout)) != s {
		return time.Time{}, false
	}
	return t, true
}

type authorization struct {
	algorithm, credential, signedHeaders, signature string
}

// parseAuthorization splits "ALG Credential=..., SignedHeaders=..., Signature=..."
// without allocating. Unknown parameters are ignored, as AWS does (a
// "Basic xyz==" header is reported as missing parameters, not as malformed).
func parseAuthorization(h string) (authorization, *awsproto.Error) {
	var a authorization
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	a.algorithm = alg
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			// AWS's wording; the hash keeps a mistyped secret out of the reply.
			sum := sha256.Sum256([]byte(h))
			return a, awsproto.Errorf(codeIncomplete,
				"Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and encoded with Base64): '%s'.",
				base64.StdEncoding.EncodeToString(sum[:]))
		}
		var dst *string
		switch strings.TrimSpace(k) {
		case "Credential":
			dst = &a.credential
		case "SignedHeaders":
			dst = &a.signedHeaders
		case "Signature":
			dst = &a.signature
		default:
			continue
		}
		if *dst != "" {
			return a, awsproto.Errorf(codeIncomplete, "Authorization header has a duplicate '%s' parameter.", strings.TrimSpace(k))
		}
		*dst = strings.TrimSpace(val)
	}
	return a, nil
}

// missing lists the absent parts in AWS's order and words, or "".
func (a *authorization) missing(hasDate bool) string {
	var m string
	if a.credential == "" {
		m += "Authorization header requires 'Credential' parameter. "
	}
	if a.signature == "" {
		m += "Authorization header requires 'Signature' parameter. "
	}
	if a.signedHeaders == "" {
		m += "Authorization header requires 'SignedHeaders' parameter. "
	}
	if !hasDate {
		m += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
	}
	return m
}

// hasName reports whether the ';'-separated list contains name exactly
// (SigV4 header names are lower case).
func hasName(list, name string) bool {
	for list != "" {
		var n string
		n, list, _ = strings.Cut(list, ";")
		if n == name {
			return true
		}
	}
	return false
}

// signedName finds header key k in the list, ignoring case, and returns the
// list's spelling of it.
func signedName(list, k string) (string, bool) {
	for list != "" {
		var n string
		n, list, _ = strings.Cut(list, ";")
		if strings.EqualFold(n, k) {
			return n, true
		}
	}
	return "", false
}
