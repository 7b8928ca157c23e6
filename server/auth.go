package server

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/fault"
)

// ingestAuth accepts the ingest key (or the admin token) in
// X-Moesif-Application-Id, as Moesif agents send it, or as a bearer token.
func (s *Server) ingestAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get("X-Moesif-Application-Id")
		if key == "" {
			key = bearer(c.Request())
		}
		if !equal(key, s.cfg.IngestKey) && !equal(key, s.cfg.AdminToken) {
			return unauthorized(key == "", "the ingest key (X-Moesif-Application-Id or Authorization: Bearer)")
		}
		return next(c)
	}
}

// adminAuth accepts only the admin token, as a bearer token.
func (s *Server) adminAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := bearer(c.Request())
		if !equal(key, s.cfg.AdminToken) {
			return unauthorized(key == "", "the admin token (Authorization: Bearer)")
		}
		return next(c)
	}
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func equal(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func unauthorized(missing bool, what string) error {
	if missing {
		return fault.New(http.StatusUnauthorized, "unauthorized", "missing credentials: send "+what)
	}
	return fault.New(http.StatusUnauthorized, "unauthorized", "wrong credentials: send "+what)
}
