// Package exportfmt is the NDJSON format of a tenant's export: a header
// line, then one line per document, {id, data, created_at, updated_at},
// with data exactly as stored. GET /org/export and orgsvc export write
// it; POST /org/import and orgsvc import read it.
package exportfmt

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/service"
)

// Format and Version name the format in the header line.
const (
	Format  = "orgsvc-export"
	Version = 1
)

// Header is the first line.
type Header struct {
	Format           string `json:"format"`
	Version          int    `json:"version"`
	OrganizationName string `json:"organization_name"`
	ExportedAt       string `json:"exported_at"`
}

// timeFormat is the documents' times, as the API writes them.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// Writer writes an export.
type Writer struct {
	w     *bufio.Writer
	stamp []byte
}

// NewWriter returns a writer of an export to w, which it buffers.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 64<<10)} }

// Header writes the header line of org's export, made now.
func (x *Writer) Header(org string, now time.Time) error {
	enc := json.NewEncoder(x.w)
	enc.SetEscapeHTML(false)
	return enc.Encode(Header{Format: Format, Version: Version, OrganizationName: org, ExportedAt: now.UTC().Format(timeFormat)})
}

// Document writes one document's line.
func (x *Writer) Document(d *model.Document) error {
	w := x.w
	w.WriteString(`{"id":"`)
	w.WriteString(d.ID.Hex())
	w.WriteString(`","data":`)
	w.WriteString(d.JSON) // compact, as stored
	w.WriteString(`,"created_at":"`)
	x.stamp = d.CreatedAt.UTC().AppendFormat(x.stamp[:0], timeFormat)
	w.Write(x.stamp)
	w.WriteString(`","updated_at":"`)
	x.stamp = d.UpdatedAt.UTC().AppendFormat(x.stamp[:0], timeFormat)
	w.Write(x.stamp)
	_, err := w.WriteString("\"}\n")
	return err
}

// Flush writes what is buffered.
func (x *Writer) Flush() error { return x.w.Flush() }

// line is a document line.
type line struct {
	ID        *string         `json:"id"`
	Data      json.RawMessage `json:"data"`
	CreatedAt *string         `json:"created_at"`
	UpdatedAt *string         `json:"updated_at"`
}

// Reader returns the documents of the export in r, for
// service.OrgService.Import: each call the next valid document, io.EOF
// at the end, or, once every line is read, an *service.ImportProblemsError
// with what was wrong. Each document is checked as the document API checks
// one: limits, and at most maxBytes of data.
func Reader(r io.Reader, limits jsondoc.Limits, maxBytes int64) func() (*service.ImportDoc, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), int(maxBytes)+4096)
	n := 0
	var bad service.ImportProblemsError
	problem := func(p service.LineProblem) {
		bad.Total++
		if len(bad.Problems) < service.MaxLineProblems {
			bad.Problems = append(bad.Problems, p)
		}
	}
	done := false
	return func() (*service.ImportDoc, error) {
		for !done {
			if !sc.Scan() {
				done = true
				if err := sc.Err(); err != nil {
					if !errors.Is(err, bufio.ErrTooLong) {
						return nil, err
					}
					problem(service.LineProblem{Line: n + 1, Msg: "line longer than MAX_DOCUMENT_BYTES allows; the import stops here", Type: "value_error.import.line_too_long"})
				} else if n == 0 {
					problem(service.LineProblem{Line: 1, Msg: "empty: the header line is missing", Type: "value_error.import.header"})
				}
				break
			}
			n++
			text := sc.Bytes()
			if n == 1 {
				// Line 1 is the header, even blank: a body without one
				// is no export.
				var h Header
				if err := json.Unmarshal(text, &h); err != nil || h.Format != Format || h.Version != Version {
					problem(service.LineProblem{Line: 1, Msg: `not an export header: {"format": "orgsvc-export", "version": 1, ...}`, Type: "value_error.import.header"})
				}
				continue
			}
			if len(bytes.TrimSpace(text)) == 0 {
				continue
			}
			d, problems := parse(text, limits, maxBytes)
			for _, p := range problems {
				p.Line = n
				problem(p)
			}
			if len(problems) == 0 {
				// Staged even after a bad line, so that repeated ids are
				// found too; nothing staged is kept then.
				return &service.ImportDoc{Line: n, Doc: *d}, nil
			}
		}
		if bad.Total > 0 {
			return nil, &bad
		}
		return nil, io.EOF
	}
}

// parse checks one document line.
func parse(text []byte, limits jsondoc.Limits, maxBytes int64) (*model.Document, []service.LineProblem) {
	if !json.Valid(text) {
		return nil, []service.LineProblem{{Msg: "not valid JSON", Type: "value_error.jsondecode"}}
	}
	var l line
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
	case l.Data == nil || string(l.Data) == "null":
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
