package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/service"
)

// ExportHeader is the first line of an export.
type ExportHeader struct {
	Format           string `json:"format" example:"orgsvc-export"`
	Version          int    `json:"version" example:"1"`
	OrganizationName string `json:"organization_name" example:"Acme Inc"`
	ExportedAt       string `json:"exported_at" example:"2026-12-02T09:30:00.123Z"`
} //	@name	ExportHeader

// Export format.
const (
	exportFormat  = "orgsvc-export"
	exportVersion = 1
)

// handleExport godoc
//
//	@Summary		Export the organization's documents
//	@Description	Streams every document of the organization as NDJSON, in constant memory: first a header line (ExportHeader), then one line per document, {id, data, created_at, updated_at}, in id order, with data exactly as stored (numbers, key order and nested arrays byte for byte). POST /org/import takes it back. Owners and admins only; recorded in the audit log as tenant.exported.
//	@Tags			tenant data
//	@Produce		application/x-ndjson
//	@Security		BearerAuth
//	@Success		200	{string}	string	"The header line, then one document a line"
//	@Failure		401	{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401	{string}	WWW-Authenticate	"Bearer challenge (RFC 6750)"
//	@Failure		403	{object}	ErrorResponse	"Members and viewers may not export"
//	@Failure		409	{object}	ErrorResponse	"Organization is being renamed or deleted (Retry-After)"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		503	{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Router			/org/export [get]
func (s *server) handleExport(w http.ResponseWriter, r *http.Request) error {
	var out *bufio.Writer
	var stamp []byte
	err := s.orgs.Export(r.Context(), principal(r), func(org *model.Organization) error {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="`+org.Slug+`.ndjson"`)
		w.WriteHeader(http.StatusOK)
		out = bufio.NewWriterSize(w, 64<<10)
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		return enc.Encode(ExportHeader{Format: exportFormat, Version: exportVersion, OrganizationName: org.Name,
			ExportedAt: time.Now().UTC().Format(rfc3339Millis)})
	}, func(d *model.Document) error {
		out.WriteString(`{"id":"`)
		out.WriteString(d.ID.Hex())
		out.WriteString(`","data":`)
		out.WriteString(d.JSON) // compact, as stored
		out.WriteString(`,"created_at":"`)
		stamp = d.CreatedAt.UTC().AppendFormat(stamp[:0], rfc3339Millis)
		out.Write(stamp)
		out.WriteString(`","updated_at":"`)
		stamp = d.UpdatedAt.UTC().AppendFormat(stamp[:0], rfc3339Millis)
		out.Write(stamp)
		_, err := out.WriteString("\"}\n")
		return err
	})
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

// importLine is a document line of an export.
type importLine struct {
	ID        *string         `json:"id"`
	Data      json.RawMessage `json:"data"`
	CreatedAt *string         `json:"created_at"`
	UpdatedAt *string         `json:"updated_at"`
}

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
//	@Failure		403		{object}	ErrorResponse	"Only owners import"
//	@Failure		409		{object}	ErrorResponse	"Organization is being changed (Retry-After)"
//	@Failure		413		{object}	ErrorResponse	"Body over IMPORT_MAX_BYTES"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not application/x-ndjson"
//	@Failure		422		{object}	ValidationError	"Bad lines, with loc [&quot;body&quot;, &quot;line&quot;, n, ...]"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
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
	res, err := s.orgs.Import(r.Context(), p, mode, s.importLines(body))
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

// importLines reads an export's lines from body: each call returns the
// next valid document, io.EOF at the end, or, once every line is read, an
// *service.ImportProblemsError with what was wrong.
func (s *server) importLines(body io.Reader) func() (*service.ImportDoc, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), int(s.maxDocumentBytes)+4096)
	line := 0
	var bad service.ImportProblemsError
	problem := func(p service.LineProblem) {
		bad.Total++
		if len(bad.Problems) < service.MaxLineProblems {
			bad.Problems = append(bad.Problems, p)
		}
	}
	limits := s.documentLimits()
	done := false
	return func() (*service.ImportDoc, error) {
		for !done {
			if !sc.Scan() {
				done = true
				if err := sc.Err(); err != nil {
					if !errors.Is(err, bufio.ErrTooLong) {
						return nil, err
					}
					problem(service.LineProblem{Line: line + 1, Msg: "line longer than MAX_DOCUMENT_BYTES allows; the import stops here", Type: "value_error.import.line_too_long"})
				} else if line == 0 {
					problem(service.LineProblem{Line: 1, Msg: "empty: the header line is missing", Type: "value_error.import.header"})
				}
				break
			}
			line++
			text := sc.Bytes()
			if len(bytes.TrimSpace(text)) == 0 {
				continue
			}
			if line == 1 {
				var h ExportHeader
				if err := json.Unmarshal(text, &h); err != nil || h.Format != exportFormat || h.Version != exportVersion {
					problem(service.LineProblem{Line: 1, Msg: `not an export header: {"format": "orgsvc-export", "version": 1, ...}`, Type: "value_error.import.header"})
				}
				continue
			}
			d, problems := parseImportLine(text, limits, s.maxDocumentBytes)
			for _, p := range problems {
				p.Line = line
				problem(p)
			}
			if len(problems) == 0 {
				// Staged even after a bad line, so that repeated ids are
				// found too; nothing staged is kept then.
				return &service.ImportDoc{Line: line, Doc: *d}, nil
			}
		}
		if bad.Total > 0 {
			return nil, &bad
		}
		return nil, io.EOF
	}
}

// parseImportLine checks one document line as the document API checks a
// document.
func parseImportLine(text []byte, limits jsondoc.Limits, maxBytes int64) (*model.Document, []service.LineProblem) {
	var l importLine
	if fe := malformed(nil, text); len(fe) > 0 {
		return nil, []service.LineProblem{{Msg: fe[0].Msg, Type: fe[0].Type}}
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, []service.LineProblem{{Msg: "not a document line: {id, data, created_at, updated_at}, no other fields", Type: "value_error.import.line"}}
	}
	var out []service.LineProblem
	d := &model.Document{}
	var err error
	if l.ID == nil {
		out = append(out, service.LineProblem{Loc: []any{"id"}, Msg: "field required", Type: "value_error.missing"})
	} else if d.ID, err = bson.ObjectIDFromHex(*l.ID); err != nil {
		out = append(out, service.LineProblem{Loc: []any{"id"}, Msg: "not a document id (24 hex digits)", Type: "value_error.document_id"})
	}
	for _, f := range []struct {
		name string
		v    *string
		into *time.Time
	}{{"created_at", l.CreatedAt, &d.CreatedAt}, {"updated_at", l.UpdatedAt, &d.UpdatedAt}} {
		if f.v == nil {
			out = append(out, service.LineProblem{Loc: []any{f.name}, Msg: "field required", Type: "value_error.missing"})
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, *f.v)
		if err != nil {
			out = append(out, service.LineProblem{Loc: []any{f.name}, Msg: "not an RFC 3339 time", Type: "value_error.datetime"})
			continue
		}
		*f.into = model.At(t)
	}
	switch {
	case l.Data == nil:
		out = append(out, service.LineProblem{Loc: []any{"data"}, Msg: "field required", Type: "value_error.missing"})
	case int64(len(l.Data)) > maxBytes:
		out = append(out, service.LineProblem{Loc: []any{"data"}, Msg: "document larger than MAX_DOCUMENT_BYTES", Type: "value_error.document.too_large"})
	default:
		doc, problems := limits.Parse(l.Data)
		for _, p := range problems {
			out = append(out, service.LineProblem{Loc: append([]any{"data"}, p.Path...), Msg: p.Msg, Type: p.Type})
		}
		d.JSON, d.Fields = string(doc.JSON), doc.Fields
	}
	if len(out) > 0 {
		return nil, out
	}
	return d, nil
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
