package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/orgsvc/orgsvc/internal/exportfmt"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/service"
)

// ExportHeader is the first line of an export.
type ExportHeader = exportfmt.Header

// ExportLine is a document's line of an export.
type ExportLine struct {
	ID        string         `json:"id" example:"665f1b2c9d3e4a0012345678"`
	Data      map[string]any `json:"data" swaggertype:"object"`
	CreatedAt string         `json:"created_at" example:"2026-12-02T09:30:00.123Z"`
	UpdatedAt string         `json:"updated_at" example:"2026-12-02T09:31:00.456Z"`
} //	@name	ExportLine

// handleExport godoc
//
//	@Summary		Export the organization's documents
//	@Description	Streams every document of the organization as NDJSON, in constant memory: first a header line (ExportHeader), then one line per document, {id, data, created_at, updated_at}, in id order, with data exactly as stored (numbers, key order and nested arrays byte for byte). POST /org/import takes it back. Owners and admins only; recorded in the audit log as tenant.exported.
//	@Tags			tenant data
//	@Produce		application/x-ndjson,json
//	@Security		BearerAuth
//	@Success		200	{array}		ExportLine	"NDJSON (application/x-ndjson), not a JSON array: a header line {format: "orgsvc-export", version: 1, organization_name, exported_at}, then one ExportLine per document; error answers are JSON"
//	@Failure		401	{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401	{string}	WWW-Authenticate	"Bearer challenge (RFC 6750)"
//	@Failure		403	{object}	ErrorResponse	"Members and viewers may not export; or Organization suspended"
//	@Failure		409	{object}	ErrorResponse	"Organization is being renamed or deleted (Retry-After)"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		503	{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/export [get]
func (s *server) handleExport(w http.ResponseWriter, r *http.Request) error {
	var out *exportfmt.Writer
	err := s.orgs.Export(r.Context(), principal(r), func(org *model.Organization) error {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="`+org.Slug+`.ndjson"`)
		w.WriteHeader(http.StatusOK)
		out = exportfmt.NewWriter(w)
		return out.Header(org.Name, time.Now())
	}, func(d *model.Document) error { return out.Document(d) })
	if out == nil {
		return err
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		s.log.Error("export cut short", "err", err)
		panic(http.ErrAbortHandler) // the client sees a broken stream, not a short one
	}
	return nil
}

// ImportResponse is the answer to an import.
type ImportResponse struct {
	Mode      string `json:"mode" example:"replace" enums:"replace,merge"`
	Documents int64  `json:"documents" example:"1200"`
} //	@name	ImportResponse

// handleImport godoc
//
//	@Summary		Import documents
//	@Description	Loads an export (GET /org/export's NDJSON: the header line, then one document a line) into the organization. mode=replace puts it in place of every document, at once: readers see the old or the new set, never a mix. mode=merge upserts its documents by id; running the same import twice gives the same state. Ids, created_at and updated_at are kept. Every line is checked as the document API checks a document; any bad line, or an id twice, is a 422 listing each problem with its line number (the header is line 1; the first 100 problems), and nothing changes. The body may hold IMPORT_MAX_BYTES (1 GiB by default). Owners only; recorded in the audit log as tenant.imported.
//	@Tags			tenant data
//	@Accept			application/x-ndjson
//	@Produce		json
//	@Security		BearerAuth
//	@Param			mode	query		string	false	"replace or merge"	Enums(replace, merge)	default(merge)
//	@Param			body	body		string	true	"The export: a header line, then one {id, data, created_at, updated_at} a line"
//	@Success		200		{object}	ImportResponse
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401		{string}	WWW-Authenticate	"Bearer challenge (RFC 6750)"
//	@Failure		403		{object}	ErrorResponse	"Only owners import; or Organization suspended"
//	@Failure		409		{object}	ErrorResponse	"Organization is being changed (Retry-After)"
//	@Failure		413		{object}	ErrorResponse	"Body over IMPORT_MAX_BYTES"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not application/x-ndjson"
//	@Failure		422		{object}	ValidationError	"Bad lines, with loc [&quot;body&quot;, &quot;line&quot;, n, ...]"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/import [post]
func (s *server) handleImport(w http.ResponseWriter, r *http.Request) error {
	mode := r.URL.Query().Get("mode")
	switch mode {
	case "":
		mode = service.ImportMerge
	case service.ImportMerge, service.ImportReplace:
	default:
		return fieldErrors{{Loc: []any{"query", "mode"}, Msg: "value is not a valid enumeration member; permitted: 'replace', 'merge'", Type: "type_error.enum"}}
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(strings.ToLower(ct)) != "application/x-ndjson" {
		return errNotNDJSON
	}
	p := principal(r)
	if p.Role != model.RoleOwner {
		return service.ErrForbidden // before reading a byte of the body
	}
	body := http.MaxBytesReader(w, r.Body, s.importMaxBytes)
	res, err := s.orgs.Import(r.Context(), p, mode, exportfmt.Reader(body, s.documentLimits(), s.maxDocumentBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errBodyTooLarge
	}
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, ImportResponse{Mode: res.Mode, Documents: res.Documents})
	return nil
}

// importProblems are an import's bad lines as 422 details.
func importProblems(e *service.ImportProblemsError) []FieldError {
	out := make([]FieldError, 0, len(e.Problems)+1)
	for _, p := range e.Problems {
		out = append(out, FieldError{Loc: append([]any{"body", "line", p.Line}, p.Loc...), Msg: p.Msg, Type: p.Type})
	}
	if more := e.Total - len(e.Problems); more > 0 {
		out = append(out, FieldError{Loc: []any{"body"}, Msg: fmt.Sprintf("and %d more problems", more), Type: "value_error.import.more"})
	}
	return out
}
