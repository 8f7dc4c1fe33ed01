package jsondoc

import (
	"bytes"
	"encoding/json"
	"errors"
)

// mergePatch applies the JSON Merge Patch (RFC 7396) patch to doc, both
// JSON texts, in time linear in their size: each object is split into its
// members once and its keys found through a map. Members keep their place
// and their text (numbers, strings and key escapes as stored); new members
// follow in the patch's order.
func mergePatch(doc, patch []byte) ([]byte, error) {
	if !json.Valid(doc) || !json.Valid(patch) {
		return nil, errors.New("not valid JSON")
	}
	var out bytes.Buffer
	out.Grow(len(doc) + len(patch))
	mergeInto(&out, trim(doc), trim(patch))
	return out.Bytes(), nil
}

// mergeInto writes the result of patching target (nil: absent) with patch.
func mergeInto(out *bytes.Buffer, target, patch []byte) {
	if patch[0] != '{' {
		out.Write(patch)
		return
	}
	var have []pair
	if len(target) > 0 && target[0] == '{' {
		have = members(target)
	}
	change := members(patch)
	index := make(map[string]int, len(change))
	for i, p := range change {
		index[p.key] = i
	}
	done := make([]bool, len(change))
	out.WriteByte('{')
	n := 0
	write := func(key, value, patch []byte) {
		if n > 0 {
			out.WriteByte(',')
		}
		n++
		out.Write(key)
		out.WriteByte(':')
		if patch == nil {
			out.Write(value)
		} else {
			mergeInto(out, value, patch)
		}
	}
	for _, m := range have {
		i, patched := index[m.key]
		switch {
		case !patched:
			write(m.raw, m.value, nil)
		case !isNull(change[i].value):
			write(m.raw, m.value, change[i].value)
		}
		if patched {
			done[i] = true
		}
	}
	for i, p := range change {
		if !done[i] && !isNull(p.value) {
			write(p.raw, nil, p.value)
		}
	}
	out.WriteByte('}')
}

// pair is one member of an object: its key decoded, the key's text and
// the value's text.
type pair struct {
	key        string
	raw, value []byte
}

// members splits the valid JSON object b into its members.
func members(b []byte) []pair {
	var out []pair
	i := space(b, 1)
	for i < len(b) && b[i] == '"' {
		end := stringEnd(b, i)
		key := b[i:end]
		i = space(b, space(b, end)+1) // past ':'
		vend := valueEnd(b, i)
		out = append(out, pair{key: decodeKey(key), raw: key, value: b[i:vend]})
		i = space(b, vend)
		if i < len(b) && b[i] == ',' {
			i = space(b, i+1)
		}
	}
	return out
}

func decodeKey(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

func isNull(v []byte) bool { return string(v) == "null" }

func trim(b []byte) []byte { return bytes.TrimSpace(b) }

func space(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index past the string starting at b[i].
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index past the value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
