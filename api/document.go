package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/service"
)

// Listing limits.
const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// DocumentResponse is a stored document in its envelope.
type DocumentResponse struct {
	ID        string          `json:"id" example:"665f1b2c9d3e4a0012345679"`
	Data      json.RawMessage `json:"data" swaggertype:"object"`
	CreatedAt string          `json:"created_at" example:"2026-11-28T21:59:07.528Z"`
	UpdatedAt string          `json:"updated_at" example:"2026-11-28T21:59:07.528Z"`
} //	@name	DocumentResponse

// DocumentPage is one page of a listing.
type DocumentPage struct {
	Items []DocumentResponse `json:"items"`
	// Next is the cursor to pass as after for the following page; null on
	// the last page.
	Next *string `json:"next" example:"665f1b2c9d3e4a0012345679" extensions:"x-nullable"`
} //	@name	DocumentPage

func envelope(d *model.Document) DocumentResponse {
	return DocumentResponse{
		ID:        d.ID.Hex(),
		Data:      json.RawMessage(d.JSON),
		CreatedAt: d.CreatedAt.UTC().Format(rfc3339Millis),
		UpdatedAt: d.UpdatedAt.UTC().Format(rfc3339Millis),
	}
}

const rfc3339Millis = "2006-01-02T15:04:05.000Z07:00"

// readDocumentBody reads a document (or merge patch) body.
func (s *server) readDocumentBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := readJSONBody(w, r, s.maxDocumentBytes)
	if err != nil {
		return nil, err
	}
	if problems := malformed([]any{"body"}, body); len(problems) > 0 {
		return nil, fieldErrors(problems)
	}
	return body, nil
}

// readDocument reads and checks a document body.
func (s *server) readDocument(w http.ResponseWriter, r *http.Request) (jsondoc.Doc, error) {
	body, err := s.readDocumentBody(w, r)
	if err != nil {
		return jsondoc.Doc{}, err
	}
	doc, problems := s.documentLimits().Parse(body)
	if len(problems) > 0 {
		return jsondoc.Doc{}, refused([]any{"body"}, problems)
	}
	return doc, nil
}

// answerDocument answers with the document's envelope, or returns err.
func answerDocument(w http.ResponseWriter, status int, d *model.Document, err error) error {
	if err != nil {
		return err
	}
	encode(w, status, envelope(d))
	return nil
}

// refused is the 422 of a document's or filter's problems under where.
func refused(where []any, problems []jsondoc.Problem) error {
	return &service.ProblemsError{Where: where, Problems: problems}
}

// handleCreateDocument godoc
//
//	@Summary		Store a document
//	@Description	Stores any JSON object as a new document of the caller's organization. Keys may not start with "$" or contain "." or NUL, nesting may not go deeper than 32 levels, and a document may hold at most MAX_DOCUMENT_KEYS keys (10,000 by default), nested ones included: past that it is refused with 422 (type value_error.document.max_keys) as soon as the key past the limit is read. Numbers, strings and key order come back exactly as sent.
//	@Tags			documents
//	@Accept			json
//	@Accept			application/merge-patch+json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			body			body		object	true	"The document's data: any JSON object, e.g. {&quot;kind&quot;:&quot;invoice&quot;,&quot;total&quot;:120.5,&quot;lines&quot;:[[1,2],[3]]}"
//	@Param			Idempotency-Key	header		string	false	"Any 1 to 255 visible ASCII characters, e.g. a UUID. A retry with the same key and body within 24 hours answers the first create's document (the same id, data and times) and makes no second one; the same key with another body is 422."
//	@Success		201		{object}	DocumentResponse
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401		{string}	WWW-Authenticate	"Bearer challenge (RFC 6750): without a token the realm alone, with a refused one error=invalid_token and an error_description saying why (expired, session over, malformed or badly signed, revoked, organization or admin gone)"
//	@Failure		413		{object}	ErrorResponse	"Body over MAX_DOCUMENT_BYTES"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		409		{object}	ErrorResponse	"Organization is being renamed or deleted (Retry-After)"
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		403		{object}	ErrorResponse	"A viewer cannot write documents; or Organization suspended"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/documents [post]
func (s *server) handleCreateDocument(w http.ResponseWriter, r *http.Request) error {
	doc, err := s.readDocument(w, r)
	if err != nil {
		return err
	}
	var d *model.Document
	if key, keyed := r.Header["Idempotency-Key"]; keyed {
		d, err = s.docs.CreateOnce(r.Context(), principal(r), strings.Join(key, ","), doc)
	} else {
		d, err = s.docs.Create(r.Context(), principal(r), doc)
	}
	return answerDocument(w, http.StatusCreated, d, err)
}

// pageLimit reads a listing's limit query parameter (empty: the default).
func pageLimit(v string) (int, error) {
	if v == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	loc := []any{"query", "limit"}
	switch {
	case err != nil:
		return 0, fieldErrors{{Loc: loc, Msg: "value is not a valid integer", Type: "type_error.integer"}}
	case n < 1:
		return 0, fieldErrors{{Loc: loc, Msg: "ensure this value is greater than or equal to 1", Type: "value_error.number.not_ge", Ctx: map[string]any{"limit_value": 1}}}
	case n > maxPageSize:
		return 0, fieldErrors{{Loc: loc, Msg: "ensure this value is less than or equal to " + strconv.Itoa(maxPageSize), Type: "value_error.number.not_le", Ctx: map[string]any{"limit_value": maxPageSize}}}
	}
	return n, nil
}

// handleGetDocument godoc
//
//	@Summary		Read a document
//	@Description	Returns one document of the caller's organization. An unknown or malformed id, or another organization's, is 404.
//	@Tags			documents
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"Document id (24 hex digits)"
//	@Success		200	{object}	DocumentResponse
//	@Failure		401	{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401	{string}	WWW-Authenticate	"Bearer challenge (RFC 6750): without a token the realm alone, with a refused one error=invalid_token and an error_description saying why (expired, session over, malformed or badly signed, revoked, organization or admin gone)"
//	@Failure		404	{object}	ErrorResponse	"Document not found"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		409		{object}	ErrorResponse	"Organization is being renamed or deleted (Retry-After)"
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		403	{object}	ErrorResponse	"Organization suspended"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/documents/{id} [get]
func (s *server) handleGetDocument(w http.ResponseWriter, r *http.Request) error {
	d, err := s.docs.Get(r.Context(), principal(r), chi.URLParam(r, "id"))
	return answerDocument(w, http.StatusOK, d, err)
}

// handleReplaceDocument godoc
//
//	@Summary		Replace a document's data
//	@Description	Replaces the data of one document of the caller's organization; created_at stays, updated_at moves. Same rules as creating.
//	@Tags			documents
//	@Accept			json
//	@Accept			application/merge-patch+json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id		path		string	true	"Document id (24 hex digits)"
//	@Param			body	body		object	true	"The new data: any JSON object, e.g. {&quot;kind&quot;:&quot;receipt&quot;,&quot;paid&quot;:true}"
//	@Success		200		{object}	DocumentResponse
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401		{string}	WWW-Authenticate	"Bearer challenge (RFC 6750): without a token the realm alone, with a refused one error=invalid_token and an error_description saying why (expired, session over, malformed or badly signed, revoked, organization or admin gone)"
//	@Failure		404		{object}	ErrorResponse	"Document not found"
//	@Failure		413		{object}	ErrorResponse	"Body over MAX_DOCUMENT_BYTES"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		409		{object}	ErrorResponse	"Organization is being renamed or deleted (Retry-After)"
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		403		{object}	ErrorResponse	"A viewer cannot write documents; or Organization suspended"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/documents/{id} [put]
func (s *server) handleReplaceDocument(w http.ResponseWriter, r *http.Request) error {
	doc, err := s.readDocument(w, r)
	if err != nil {
		return err
	}
	d, err := s.docs.Replace(r.Context(), principal(r), chi.URLParam(r, "id"), doc)
	return answerDocument(w, http.StatusOK, d, err)
}

// handlePatchDocument godoc
//
//	@Summary		Merge-patch a document's data
//	@Description	Applies a JSON Merge Patch (RFC 7396) to the data of one document: members set to null are removed, objects merge, anything else replaces. The patch, whose keys count against MAX_DOCUMENT_KEYS too, and the result must follow the same rules as a created document. 409 when the document changed between read and write: retry.
//	@Tags			documents
//	@Accept			json
//	@Accept			application/merge-patch+json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id		path		string	true	"Document id (24 hex digits)"
//	@Param			body	body		object	true	"The merge patch: members set to null are removed, e.g. {&quot;paid&quot;:true,&quot;lines&quot;:null}"
//	@Success		200		{object}	DocumentResponse
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401		{string}	WWW-Authenticate	"Bearer challenge (RFC 6750): without a token the realm alone, with a refused one error=invalid_token and an error_description saying why (expired, session over, malformed or badly signed, revoked, organization or admin gone)"
//	@Failure		404		{object}	ErrorResponse	"Document not found"
//	@Failure		409		{object}	ErrorResponse	"Changed concurrently, or the organization is being renamed or deleted (Retry-After); retry"
//	@Failure		413		{object}	ErrorResponse	"Body or result over MAX_DOCUMENT_BYTES"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not JSON"
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		403		{object}	ErrorResponse	"A viewer cannot write documents; or Organization suspended"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/documents/{id} [patch]
func (s *server) handlePatchDocument(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readDocumentBody(w, r)
	if err != nil {
		return err
	}
	patch, problems := s.documentLimits().ParsePatch(body)
	if len(problems) > 0 {
		return refused([]any{"body"}, problems)
	}
	d, err := s.docs.Patch(r.Context(), principal(r), chi.URLParam(r, "id"), patch)
	return answerDocument(w, http.StatusOK, d, err)
}

// handleDeleteDocument godoc
//
//	@Summary		Delete a document
//	@Description	Deletes one document of the caller's organization.
//	@Tags			documents
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id	path	string	true	"Document id (24 hex digits)"
//	@Success		204	"Deleted"
//	@Failure		401	{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401	{string}	WWW-Authenticate	"Bearer challenge (RFC 6750): without a token the realm alone, with a refused one error=invalid_token and an error_description saying why (expired, session over, malformed or badly signed, revoked, organization or admin gone)"
//	@Failure		404	{object}	ErrorResponse	"Document not found"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		409		{object}	ErrorResponse	"Organization is being renamed or deleted (Retry-After)"
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		403		{object}	ErrorResponse	"A viewer cannot write documents; or Organization suspended"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/documents/{id} [delete]
func (s *server) handleDeleteDocument(w http.ResponseWriter, r *http.Request) error {
	if err := s.docs.Delete(r.Context(), principal(r), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleListDocuments godoc
//
//	@Summary		List documents
//	@Description	Lists the caller's documents in id order, a page at a time. A page holds at most limit documents, and stops early, with next, before their data passes MAX_PAGE_BYTES (4 MiB by default; a page always holds one document, however large). Pass the answer's next as after to get the following page; next is null on the last page. filter is a JSON object of equality conditions on top-level data fields, with string, number, boolean or null values; operators are refused.
//	@Tags			documents
//	@Produce		json
//	@Security		BearerAuth
//	@Param			limit	query		int		false	"Page size, 1 to 500"	default(50)	minimum(1)	maximum(500)
//	@Param			after	query		string	false	"Cursor: the previous page's next"
//	@Param			filter	query		string	false	"Equality filter, e.g. {&quot;kind&quot;:&quot;invoice&quot;,&quot;paid&quot;:false}"
//	@Success		200		{object}	DocumentPage
//	@Failure		401		{object}	ErrorResponse	"Missing, invalid or revoked token"
//	@Header			401		{string}	WWW-Authenticate	"Bearer challenge (RFC 6750): without a token the realm alone, with a refused one error=invalid_token and an error_description saying why (expired, session over, malformed or badly signed, revoked, organization or admin gone)"
//	@Failure		422		{object}	ValidationError
//	@Failure		500		{object}	ErrorResponse
//	@Failure		409		{object}	ErrorResponse	"Organization is being renamed or deleted (Retry-After)"
//	@Failure		503		{object}	ErrorResponse	"database unavailable (Retry-After)"
//	@Failure		403	{object}	ErrorResponse	"Organization suspended"
//	@Failure		429	{object}	ErrorResponse	"Past the organization's request rate (Retry-After)"
//	@Router			/org/documents [get]
func (s *server) handleListDocuments(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := pageLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	var where []jsondoc.Condition
	if v := q.Get("filter"); v != "" {
		if problems := malformed([]any{"query", "filter"}, []byte(v)); len(problems) > 0 {
			return fieldErrors(problems)
		}
		var problems []jsondoc.Problem
		if where, problems = jsondoc.ParseFilter(v); len(problems) > 0 {
			return refused([]any{"query", "filter"}, problems)
		}
	}
	page, err := s.docs.List(r.Context(), principal(r), q.Get("after"), where, limit)
	if err != nil {
		return err
	}
	writePage(w, page)
	return nil
}
