package awsproto

import (
	"encoding/base64"
	"encoding/json"
)

// pageToken is what an opaque nextToken carries: the operation it belongs to
// and the key to continue after.
type pageToken struct {
	Op    string `json:"o"`
	After string `json:"a"`
}

// EncodePageToken returns the nextToken that continues op after the key
// after; "" (no more pages) when after is "".
func EncodePageToken(op, after string) string {
	if after == "" {
		return ""
	}
	b, _ := json.Marshal(pageToken{op, after})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodePageToken returns the key a nextToken of op continues after ("" for
// no token). ok is false for a token of another operation or one a client
// edited: the caller answers with its service's InvalidParameterException.
func DecodePageToken(op, token string) (after string, ok bool) {
	if token == "" {
		return "", true
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	var t pageToken
	if err != nil || json.Unmarshal(b, &t) != nil || t.Op != op || t.After == "" {
		return "", false
	}
	return t.After, true
}
