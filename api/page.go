package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/service"
)

// documentLimits bound the documents and merge patches the API reads.
func (s *server) documentLimits() jsondoc.Limits {
	if s.maxDocumentKeys > 0 {
		return jsondoc.Limits{MaxKeys: s.maxDocumentKeys}
	}
	return jsondoc.Limits{MaxKeys: jsondoc.DefaultMaxKeys}
}

// writePage answers a listing page as a DocumentPage, writing each
// document's stored JSON as it goes rather than building the answer in
// memory: the same bytes encode would send (json.Marshal escapes <, >, &,
// U+2028 and U+2029 in a json.RawMessage, so they are escaped here too).
func writePage(w http.ResponseWriter, page service.Page) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	out := bufio.NewWriterSize(w, 64<<10)
	var esc bytes.Buffer
	var stamp []byte
	out.WriteString(`{"items":[`)
	for i := range page.Items {
		d := &page.Items[i]
		if i > 0 {
			out.WriteByte(',')
		}
		out.WriteString(`{"id":"`)
		out.WriteString(d.ID.Hex())
		out.WriteString(`","data":`)
		writeData(out, &esc, d)
		out.WriteString(`,"created_at":"`)
		stamp = d.CreatedAt.UTC().AppendFormat(stamp[:0], rfc3339Millis)
		out.Write(stamp)
		out.WriteString(`","updated_at":"`)
		stamp = d.UpdatedAt.UTC().AppendFormat(stamp[:0], rfc3339Millis)
		out.Write(stamp)
		out.WriteString(`"}`)
	}
	out.WriteString(`],"next":`)
	if page.Next == "" {
		out.WriteString("null")
	} else {
		out.WriteString(`"` + page.Next + `"`)
	}
	out.WriteByte('}')
	_ = out.Flush()
}

// writeData writes a document's JSON, escaped as json.Marshal would.
func writeData(out *bufio.Writer, esc *bytes.Buffer, d *model.Document) {
	if !strings.ContainsAny(d.JSON, "<>&\u2028\u2029") {
		out.WriteString(d.JSON)
		return
	}
	esc.Reset()
	json.HTMLEscape(esc, []byte(d.JSON))
	out.Write(esc.Bytes())
}
