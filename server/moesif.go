package server

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// getMoesifConfig answers as Moesif's collector does, so agents run
// cleanly: sample everything, no per-user or per-company rules.
func (s *Server) getMoesifConfig(c echo.Context) error {
	c.Response().Header().Set("X-Moesif-Config-ETag", configETag)
	return c.JSON(http.StatusOK, map[string]any{
		"org_id": "", "app_id": "", "sample_rate": 100,
		"user_sample_rate": map[string]int{}, "company_sample_rate": map[string]int{},
		"user_rules": map[string]any{}, "company_rules": map[string]any{},
		"regex_config": []any{}, "billing_config_jsons": map[string]any{},
	})
}

// getMoesifRules: meterd has no governance rules.
func (s *Server) getMoesifRules(c echo.Context) error {
	c.Response().Header().Set("X-Moesif-Rules-Tag", "meterd-rules-1")
	return c.JSON(http.StatusOK, []any{})
}

func strconvQuote(s string) string { return strconv.Quote(s) }
