package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/server/wire"
)

// actorHeader names who makes a change (the UI sends the signed-in
// person's name); "admin" when absent.
const actorHeader = "X-Meterd-Actor"

func actor(c echo.Context) string {
	a := strings.TrimSpace(c.Request().Header.Get(actorHeader))
	if len(a) > 200 {
		a = a[:200]
	}
	return a
}

// meterJSON is a meter as the API shows it: its state and current version.
type meterJSON struct {
	*registry.Meter
	Current registry.Version `json:"current"`
}

func renderMeter(m *registry.Meter) meterJSON { return meterJSON{Meter: m, Current: m.Latest()} }

// decodeJSON reads a JSON body into v, refusing unknown fields so a typo
// ("filtre") is an error, not a silently ignored field. A body that is not
// one JSON value is invalid_json with its position, as on ingestion.
func (s *Server) decodeJSON(c echo.Context, v any) error {
	body, done, err := s.smallBody(c, 1<<20)
	if err != nil {
		return err
	}
	defer done()
	if err := wire.SyntaxError(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			f := jsonPath(te.Field)
			return fault.Invalid(wire.CodeInvalidType, f, f+" must be "+te.Type.String()+", got "+te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return fault.Invalid("unknown_field", f, "unknown field "+strconvQuote(f))
		}
		return fault.Invalid(wire.CodeInvalidJSON, "", "malformed JSON: "+err.Error())
	}
	return nil
}

// jsonPath drops from a decoding error's field path the names of embedded
// Go structs ("Definition.filter" is "filter"): the API's JSON names are
// all lower-case.
func jsonPath(field string) string {
	parts := strings.Split(field, ".")
	out := parts[:0]
	for _, p := range parts {
		if p == "" || p[0] < 'A' || p[0] > 'Z' {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// meterRequest is POST /v1/meters' body: a definition and an optional
// slug (a meter's key on the OpenMeter API).
type meterRequest struct {
	rules.Definition
	Slug string `json:"slug"`
}

func (s *Server) createMeter(c echo.Context) error {
	var req meterRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	m, err := s.meters.Create(c.Request().Context(), req.Definition, req.Slug, actor(c))
	if err != nil {
		return writeFailed(err)
	}
	return c.JSON(http.StatusCreated, renderMeter(m))
}

func (s *Server) listMeters(c echo.Context) error {
	ms, err := s.meters.List(c.Request().Context())
	if err != nil {
		return readFailed(err)
	}
	out := make([]meterJSON, len(ms))
	for i, m := range ms {
		out[i] = renderMeter(m)
	}
	return c.JSON(http.StatusOK, map[string]any{"meters": out})
}

func (s *Server) getMeter(c echo.Context) error {
	m, err := s.meters.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return readFailed(err)
	}
	return c.JSON(http.StatusOK, renderMeter(m))
}

// meterHistory is the full audit trail: every version and every change.
func (s *Server) meterHistory(c echo.Context) error {
	m, err := s.meters.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return readFailed(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"id": m.ID, "versions": m.Versions, "changes": m.Changes})
}

type versionRequest struct {
	registry.Spec
	EffectiveFrom *time.Time `json:"effective_from"`
}

func (s *Server) addVersion(c echo.Context) error {
	var req versionRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	var eff time.Time
	if req.EffectiveFrom != nil {
		eff = *req.EffectiveFrom
	}
	m, err := s.meters.AddVersion(c.Request().Context(), c.Param("id"), req.Spec, eff, actor(c))
	if err != nil {
		return writeFailed(err)
	}
	return c.JSON(http.StatusCreated, renderMeter(m))
}

// patchMeter changes only the name, the slug and the active flag; any
// other field is refused by name (expressions change through new
// versions). The slug goes first: a taken one changes nothing.
func (s *Server) patchMeter(c echo.Context) error {
	p, err := s.decodePatch(c, true, "Expressions and the billing binding change through POST /v1/meters/{id}/versions; status through active or /archive")
	if err != nil {
		return err
	}
	if p.slug != nil {
		if _, err := s.meters.SetSlug(c.Request().Context(), c.Param("id"), *p.slug, actor(c)); err != nil {
			return writeFailed(err)
		}
	}
	m, err := s.meters.Patch(c.Request().Context(), c.Param("id"), p.name, p.active, actor(c))
	if err != nil {
		return writeFailed(err)
	}
	return c.JSON(http.StatusOK, renderMeter(m))
}

// patchBody is a PATCH body of meters and governance rules.
type patchBody struct {
	name, slug *string
	active     *bool
}

// decodePatch reads a PATCH body: name, active and (meters) slug only;
// another field is refused by name, with where it changes instead.
func (s *Server) decodePatch(c echo.Context, slug bool, elsewhere string) (patchBody, error) {
	var p patchBody
	var raw map[string]json.RawMessage
	if err := s.decodeJSON(c, &raw); err != nil {
		return p, err
	}
	only := "only name and active can"
	if slug {
		only = "only name, slug and active can"
	}
	for k, v := range raw {
		var field **string
		switch {
		case k == "name":
			field = &p.name
		case k == "slug" && slug:
			field = &p.slug
		case k == "active":
			if err := json.Unmarshal(v, &p.active); err != nil || p.active == nil {
				return p, fault.Invalid(wire.CodeInvalidType, "active", "active must be true or false")
			}
			continue
		default:
			return p, fault.Invalid("immutable_field", k, k+" cannot be changed by PATCH: "+only+". "+elsewhere)
		}
		if err := json.Unmarshal(v, field); err != nil || *field == nil {
			return p, fault.Invalid(wire.CodeInvalidType, k, k+" must be a string")
		}
	}
	return p, nil
}

func (s *Server) archiveMeter(c echo.Context) error {
	m, err := s.meters.Archive(c.Request().Context(), c.Param("id"), actor(c))
	if err != nil {
		return writeFailed(err)
	}
	return c.JSON(http.StatusOK, renderMeter(m))
}

func (s *Server) deleteMeter(c echo.Context) error {
	c.Response().Header().Set("Allow", "GET, PATCH")
	return fault.New(http.StatusMethodNotAllowed, "meters_are_not_deleted",
		"meters are never deleted, so that every bill stays auditable: archive it with POST /v1/meters/{id}/archive")
}

// validateMeter compiles a definition without storing it (the UI's live
// validation): {valid, errors}.
func (s *Server) validateMeter(c echo.Context) error {
	var d rules.Definition
	if err := s.decodeJSON(c, &d); err != nil {
		return err
	}
	if d.Status == "" {
		d.Status = rules.StatusInactive
	}
	_, err := rules.Compile(d)
	if err == nil {
		return c.JSON(http.StatusOK, map[string]any{"valid": true, "errors": []any{}})
	}
	es, ok := fault.AsList(err)
	if !ok {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"valid": false, "errors": es})
}
