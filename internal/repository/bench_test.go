package repository_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

// BenchmarkStoreKeys inserts and reads back, on the embedded store, a
// document of 10k, 20k and 40k top-level scalars, each one lifted for
// filters: the time per op should double with the keys (a sub-document
// of one key per scalar made it quadruple).
func BenchmarkStoreKeys(b *testing.B) {
	ctx := context.Background()
	r := repository.NewTenantRepository(storetest.Database(b), 0)
	tn := model.Tenant{Slug: "keys"}
	if _, err := r.Create(ctx, tn); err != nil {
		b.Fatal(err)
	}
	org := bson.NewObjectID()
	for _, n := range []int{10000, 20000, 40000} {
		var s strings.Builder
		s.WriteByte('{')
		for i := range n {
			if i > 0 {
				s.WriteByte(',')
			}
			fmt.Fprintf(&s, `"k%d":%d`, i, i)
		}
		s.WriteByte('}')
		doc, problems := jsondoc.Parse([]byte(s.String()))
		if problems != nil {
			b.Fatal(problems)
		}
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			for b.Loop() {
				d := storedDoc(org, string(doc.JSON))
				d.Fields = doc.Fields
				if err := r.InsertDocument(ctx, tn, org, d); err != nil {
					b.Fatal(err)
				}
				if _, err := r.Document(ctx, tn, org, d.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
