// Package wire decodes and validates the wire formats meterd ingests (the
// Moesif collector's events and profiles, CloudEvents) into storage types.
// It knows nothing of HTTP beyond the status an error deserves.
package wire

import (
	"fmt"
	"net/http"

	"github.com/meterd/meterd/engine/fault"
)

// Error codes (docs/api.md lists them).
const (
	CodeInvalidJSON          = "invalid_json"
	CodeInvalidType          = "invalid_type"
	CodeMissingField         = "missing_field"
	CodeInvalidValue         = "invalid_value"
	CodeInvalidUTF8          = "invalid_utf8"
	CodeTimeOutOfRange       = "time_out_of_range"
	CodeBodyTooLarge         = "body_too_large"
	CodeBatchTooLarge        = "batch_too_large"
	CodeMetadataTooLarge     = "metadata_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeUnsupportedEncoding  = "unsupported_encoding"
)

// A rejected request is a fault.Error (engine/fault): Index is the
// offending event's position in a batch (nil for a single object), and
// the message starts with it ("event 3: ..."); Field is its JSON path.
func newError(status int, code, field string, index *int, format string, args ...any) *fault.Error {
	msg := fmt.Sprintf(format, args...)
	if index != nil {
		msg = fmt.Sprintf("event %d: %s", *index, msg)
	}
	return &fault.Error{Status: status, Code: code, Message: msg, Field: field, Index: index}
}

func badRequest(code, field string, index *int, format string, args ...any) *fault.Error {
	return newError(http.StatusBadRequest, code, field, index, format, args...)
}

// MalformedJSON is the error for a body that is not JSON, at byte off.
func MalformedJSON(body []byte, off int64, reason string) *fault.Error {
	return malformed(body, nil, off, reason)
}

func malformed(body []byte, index *int, off int64, reason string) *fault.Error {
	line, col := lineCol(body, off)
	return badRequest(CodeInvalidJSON, "", index, "malformed JSON at line %d, column %d (byte %d): %s", line, col, off, reason)
}

// TooLarge is the error for a body over the size cap.
func TooLarge(limit int64) *fault.Error {
	return newError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "", nil,
		"request body is larger than %d bytes (after decompression); send smaller batches", limit)
}
