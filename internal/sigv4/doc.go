// Package sigv4 verifies AWS Signature Version 4 on incoming HTTP requests,
// so that the unchanged AWS CLI and SDKs can authenticate to Gantry.
//
// Verify re-signs a copy of the request with the AWS SDK for Go v2's own
// signer (aws/signer/v4), using the secret looked up for the request's access
// key, and compares the result with the client's signature. Reusing the SDK's
// canonicalisation instead of a second implementation keeps the server in step
// with the clients it must accept.
//
// What it does not do:
//   - authorization: a verified request proves who sent it, not what it may do;
//   - session tokens: X-Amz-Security-Token is accepted if signed but not
//     validated (there is no STS yet), the access key lookup is the only check;
//   - presigned URLs (query-string auth), SigV4a and streaming/chunk-signed
//     payloads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): they are rejected;
//   - replay protection beyond the clock-skew window;
//   - reading the body: the caller reads it once (bounded) and passes it in.
//
// It never logs, and never puts secrets or derived keys in error messages.
package sigv4
