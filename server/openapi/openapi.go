// Package openapi holds meterd's OpenAPI 3.1 document, openapi.json,
// served at GET /openapi.json. It is written by hand, beside docs/api.md:
// the server's tests check that it lists every route Echo has (and no
// other) and that real answers validate against it (server/openapi_test.go).
package openapi

import _ "embed"

// JSON is the document.
//
//go:embed openapi.json
var JSON []byte
