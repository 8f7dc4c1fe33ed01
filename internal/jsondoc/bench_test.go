package jsondoc_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
)

var smallDoc = []byte(`{"kind":"invoice","n":42,"total":120.5,"paid":false,"customer":"Acme Inc","lines":[[1,2],[3]]}`)

// largeDoc is a document of at least size bytes: top-level scalars, then
// an array of nested items.
func largeDoc(size int) []byte {
	var s strings.Builder
	s.WriteString(`{"kind":"catalog","version":7,"published":true,"owner":null,"items":[`)
	for i := 0; s.Len() < size; i++ {
		if i > 0 {
			s.WriteByte(',')
		}
		fmt.Fprintf(&s, `{"id":%d,"name":"item number %d","price":%d.25,"tags":["a","b","c"],"dims":{"w":%d,"h":[1,[2,3]]},"big":9007199254740993}`, i, i, i, i%17)
	}
	s.WriteString(`]}`)
	return []byte(s.String())
}

func benchParse(b *testing.B, raw []byte) {
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, problems := jsondoc.Parse(raw); len(problems) > 0 {
			b.Fatal(problems)
		}
	}
}

// BenchmarkParseSmall checks and compacts a document of 94 bytes,
// as every document write does.
func BenchmarkParseSmall(b *testing.B) { benchParse(b, smallDoc) }

// BenchmarkParse64KiB checks and compacts a document of 64 KiB.
func BenchmarkParse64KiB(b *testing.B) { benchParse(b, largeDoc(64<<10)) }

// BenchmarkMerge applies a merge patch to a stored document and checks
// the result, as PATCH /org/documents/{id} does.
func BenchmarkMerge(b *testing.B) {
	doc := largeDoc(1 << 10)
	patch := []byte(`{"published":false,"owner":"someone","version":null,"extra":{"note":"checked"}}`)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, problems := jsondoc.Merge(doc, patch); len(problems) > 0 {
			b.Fatal(problems)
		}
	}
}

// keysDoc is a document of n top-level members "k0":0 ... with value
// val (a JSON literal; "" numbers them).
func keysDoc(n int, val string) []byte {
	var s strings.Builder
	s.WriteByte('{')
	for i := range n {
		if i > 0 {
			s.WriteByte(',')
		}
		v := val
		if v == "" {
			v = fmt.Sprint(i)
		}
		fmt.Fprintf(&s, `"k%d":%s`, i, v)
	}
	s.WriteByte('}')
	return []byte(s.String())
}

var keyCounts = []int{10000, 20000, 40000}

// BenchmarkParseKeys checks documents of 10k, 20k and 40k top-level keys
// (no key cap): the time per op should double with the keys.
func BenchmarkParseKeys(b *testing.B) {
	for _, n := range keyCounts {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) { benchParse(b, keysDoc(n, "")) })
	}
}

// BenchmarkMergeKeys merge-patches documents of 10k, 20k and 40k keys
// with a patch that changes every member and one that removes half of
// them: the time per op should double with the keys.
func BenchmarkMergeKeys(b *testing.B) {
	for _, n := range keyCounts {
		doc := keysDoc(n, "")
		for _, p := range []struct {
			name  string
			patch []byte
		}{{"set-all", keysDoc(n, `"x"`)}, {"remove-half", keysDoc(n/2, "null")}} {
			b.Run(fmt.Sprintf("%dk/%s", n/1000, p.name), func(b *testing.B) {
				b.SetBytes(int64(len(doc) + len(p.patch)))
				b.ReportAllocs()
				for b.Loop() {
					if _, problems := jsondoc.Merge(doc, p.patch); len(problems) > 0 {
						b.Fatal(problems)
					}
				}
			})
		}
	}
}
