// Package audit keeps each organization's audit log: an append-only chain
// of events, each hashed over its canonical form and the hash before it.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/orgsvc/orgsvc/internal/model"
)

// ZeroHash is the prev_hash of an organization's first event.
var ZeroHash = strings.Repeat("0", 64)

// Canonical is the form of ev that its hash covers: ev as the API shows it,
// without "hash", as JSON with the members of every object sorted by key,
// no white space, and every character outside printable ASCII escaped as
// \uXXXX (lower-case hex; a surrogate pair beyond U+FFFF). It is what
// Python's json.dumps(ev, sort_keys=True, separators=(",", ":")) writes.
func Canonical(ev model.Event) []byte {
	plain, _ := json.Marshal(Normal(ev))
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		panic(fmt.Sprintf("audit: an event that does not decode: %v", err))
	}
	m := v.(map[string]any)
	delete(m, "hash")
	var b bytes.Buffer
	write(&b, m)
	return b.Bytes()
}

// Hash is the lower-case hex SHA-256 of ev's canonical form.
func Hash(ev model.Event) string {
	sum := sha256.Sum256(Canonical(ev))
	return hex.EncodeToString(sum[:])
}

// Normal gives empty lists and maps one form, whichever the store gave
// back.
func Normal(ev model.Event) model.Event {
	if ev.Targets == nil {
		ev.Targets = []model.Target{}
	}
	if ev.Changes == nil {
		ev.Changes = map[string]model.Change{}
	}
	return ev
}

func write(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // byte order of UTF-8 is code point order
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			write(b, v[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			write(b, e)
		}
		b.WriteByte(']')
	case string:
		writeString(b, v)
	case json.Number:
		b.WriteString(v.String())
	case bool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case nil:
		b.WriteString("null")
	default:
		panic(fmt.Sprintf("audit: canonical form of %T", v))
	}
}

func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || r > 0x7e && r < 0x80:
			fmt.Fprintf(b, `\u%04x`, r)
		case r < 0x80:
			b.WriteRune(r)
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case r > 0xffff:
			r -= 0x10000
			fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			fmt.Fprintf(b, `\u%04x`, r)
		}
	}
	b.WriteByte('"')
}
