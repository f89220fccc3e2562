package awsproto

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// ContentType is the media type of AWS JSON 1.1 requests and responses.
const ContentType = "application/x-amz-json-1.1"

// MaxBodyBytes bounds a request body. ECS's largest inputs (task definitions,
// at most 64 KiB of container definitions plus tags) fit many times over.
const MaxBodyBytes = 1 << 20

// ReadBody reads at most MaxBodyBytes of r's body; a larger body is an error
// the client can act on, not a truncated request.
func ReadBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, Errorf("SerializationException", "could not read the request body: %v", err)
	}
	if len(b) > MaxBodyBytes {
		return nil, Errorf("RequestEntityTooLargeException", "request body is larger than the limit of %d bytes", MaxBodyBytes)
	}
	return b, nil
}

// Decode parses a JSON 1.1 request body into v. An empty body means "{}"
// (some clients send nothing for operations without input). Malformed JSON,
// a non-object document, trailing data and wrong member types are
// SerializationExceptions naming the member.
func Decode(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil
	}
	if body[0] != '{' {
		return Errorf("SerializationException", "the request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return serializationError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf("SerializationException", "unexpected data after the JSON object")
	}
	return nil
}

func serializationError(err error) *Error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(request)"
		}
		return Errorf("SerializationException", "member %s: expected %s, got JSON %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return Errorf("SerializationException", "malformed JSON at byte %d: %v", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf("SerializationException", "malformed JSON: unexpected end of input")
	default:
		// Custom unmarshalers (timestamps) explain themselves.
		return Errorf("SerializationException", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

// jsonKind names a Go kind in JSON's words for error messages.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "a list"
	case "struct", "map", "ptr":
		return "an object"
	case "int8", "int16", "int32", "int64", "int", "uint8", "uint16", "uint32", "uint64", "uint":
		return "an integer in range"
	case "float32", "float64":
		return "a number"
	}
	return k
}

// WriteJSON writes a successful response.
func WriteJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// InternalMessage is all a client learns of an unexpected error; the detail
// goes to the server's log.
const InternalMessage = "An internal error occurred; see the Gantry server log."

// WriteError is the one place errors become wire responses: *Error keeps its
// code and status, *ValidationError is an InvalidParameterException, and
// anything else is logged and answered as a generic ServerException.
func WriteError(w http.ResponseWriter, err error) {
	var ae *Error
	var ve *ValidationError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &ve):
		ae = &Error{Code: "InvalidParameterException", Message: ve.Error()}
	default:
		slog.Error("internal error", "err", err)
		ae = &Error{Code: "ServerException", Message: InternalMessage}
	}
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{ae.Code, ae.Message})
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("x-amzn-ErrorType", ae.Code)
	w.WriteHeader(ae.HTTPStatus())
	w.Write(b)
}

// NewRequestID returns a random UUID-formatted request ID.
func NewRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
