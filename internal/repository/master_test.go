package repository_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// releaseModes are the two ways a claim is released: one delete with a
// two-field filter (MongoDB), or a read and a delete by _id (a database
// that evaluates nothing but _id filters itself).
var releaseModes = []struct {
	name          string
	idFiltersOnly bool
}{{"one-delete", false}, {"read-then-delete", true}}

// TestReleaseOnlyByOwner: a claim goes only when its owner releases it,
// whichever way the repository releases; releasing what is gone is not an
// error.
func TestReleaseOnlyByOwner(t *testing.T) {
	for _, mode := range releaseModes {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			r := repository.NewMasterRepository(storetest.Database(t), mode.idFiltersOnly)
			owner, other := bson.NewObjectID(), bson.NewObjectID()

			if err := r.ClaimName(ctx, "acme", owner); err != nil {
				t.Fatal(err)
			}
			if err := r.ReleaseName(ctx, "acme", other); err != nil {
				t.Fatal(err)
			}
			if got, err := r.NameClaim(ctx, "acme"); err != nil || got.OrganizationID != owner {
				t.Fatalf("after a release by another: claim %v, %v; want %v's", got, err, owner)
			}
			if err := r.ReleaseName(ctx, "acme", owner); err != nil {
				t.Fatal(err)
			}
			if _, err := r.NameClaim(ctx, "acme"); !errors.Is(err, repository.ErrNotFound) {
				t.Fatalf("after the owner's release: %v, want ErrNotFound", err)
			}
			if err := r.ReleaseName(ctx, "acme", owner); err != nil {
				t.Fatalf("releasing a released name: %v", err)
			}

			const key = "admin@acme.example.com"
			if err := r.ClaimEmail(ctx, key, owner); err != nil {
				t.Fatal(err)
			}
			if err := r.ReleaseEmail(ctx, key, other); err != nil {
				t.Fatal(err)
			}
			if err := r.ClaimEmail(ctx, key, other); !errors.Is(err, repository.ErrDuplicate) {
				t.Fatalf("claim after a release by another: %v, want ErrDuplicate", err)
			}
			if err := r.ReleaseEmail(ctx, key, owner); err != nil {
				t.Fatal(err)
			}
			if err := r.ClaimEmail(ctx, key, other); err != nil {
				t.Fatalf("claim after the owner's release: %v", err)
			}
		})
	}
}

// BenchmarkReleaseName claims and releases a name among 2,000 others, each
// way. On the embedded store the one delete reads every claim.
func BenchmarkReleaseName(b *testing.B) {
	for _, mode := range releaseModes {
		b.Run(mode.name, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Database(b)
			others := make([]any, 2000)
			for i := range others {
				others[i] = model.NameClaim{Slug: fmt.Sprintf("org-%05d", i), OrganizationID: bson.NewObjectID(), CreatedAt: time.Now()}
			}
			if _, err := db.Collection(model.NameClaims).InsertMany(ctx, others); err != nil {
				b.Fatal(err)
			}
			r := repository.NewMasterRepository(db, mode.idFiltersOnly)
			owner := bson.NewObjectID()
			for b.Loop() {
				if err := r.ClaimName(ctx, "bench", owner); err != nil {
					b.Fatal(err)
				}
				if err := r.ReleaseName(ctx, "bench", owner); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
