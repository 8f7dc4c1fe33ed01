package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/service"
)

// TestOrganizationUnderLegacySlugStaysReachable: an organization made when
// every name without ASCII letters or digits had the slug "_" keeps it. It
// is still found by its name, its name stays its own, other such names get
// slugs of their own, and it can rename itself onto the new scheme.
func TestOrganizationUnderLegacySlugStaysReachable(t *testing.T) {
	s := newServices(t)
	ctx := context.Background()
	create := func(name, email string) (*model.Organization, error) {
		return s.orgs.Create(ctx, service.CreateOrg{Name: name, Email: email, Password: "password-123"})
	}
	org, err := create("日本", "admin@nihon.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if org.Slug != "xn--wgv71a" {
		t.Fatalf("slug of 日本: got %q, want xn--wgv71a", org.Slug)
	}
	// Move it to where the original rule put it: slug "_", collection org__.
	legacy := "_"
	if err := s.db.Client().Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: s.db.Name() + "." + repository.CollectionName(org.Slug)},
		{Key: "to", Value: s.db.Name() + "." + repository.CollectionName(legacy)},
	}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Collection(model.Organizations).UpdateOne(ctx, bson.D{{Key: "_id", Value: org.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "slug", Value: legacy}, {Key: "collection_name", Value: repository.CollectionName(legacy)}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Collection(model.NameClaims).InsertOne(ctx, model.NameClaim{Slug: legacy, OrganizationID: org.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Collection(model.NameClaims).DeleteOne(ctx, bson.D{{Key: "_id", Value: org.Slug}}); err != nil {
		t.Fatal(err)
	}

	got, err := s.orgs.Get(ctx, "日本")
	if err != nil || got.ID != org.ID || got.Slug != legacy {
		t.Fatalf("Get 日本: %+v, %v; want the organization under slug %q", got, err, legacy)
	}
	if _, err := create("日本", "other@nihon.example.com"); !errors.Is(err, service.ErrOrgExists) {
		t.Fatalf("a second 日本: %v, want ErrOrgExists", err)
	}
	cn, err := create("中国", "admin@zhongguo.example.com")
	if err != nil || cn.Slug != "xn--fiqs8s" {
		t.Fatalf("中国 beside a legacy 日本: %+v, %v", cn, err)
	}
	// An all-ASCII name without letters or digits keeps the original "_".
	if _, err := create("!!", "admin@bang.example.com"); !errors.Is(err, service.ErrOrgExists) {
		t.Fatalf("!! while 日本 holds \"_\": %v, want ErrOrgExists", err)
	}
	// Another organization cannot rename itself to the legacy one's name.
	p := service.Principal{AdminID: cn.AdminID, OrgID: cn.ID, Tenant: cn.Tenant(), Role: model.RoleOwner}
	taken := "日本"
	if _, err := s.orgs.Update(ctx, p, service.UpdateOrg{Name: "中国", NewName: &taken}); !errors.Is(err, service.ErrNameConflict) {
		t.Fatalf("rename 中国 to 日本: %v, want ErrNameConflict", err)
	}

	// The legacy organization renames itself onto a slug of the new scheme.
	lp := service.Principal{AdminID: org.AdminID, OrgID: org.ID, Tenant: model.Tenant{Slug: legacy}, Role: model.RoleOwner}
	s.rename(lp, "日本", "東京")
	moved, err := s.orgs.Get(ctx, "東京")
	if err != nil || moved.ID != org.ID || moved.Slug != model.Slug("東京") {
		t.Fatalf("Get 東京: %+v, %v", moved, err)
	}
	if _, err := s.orgs.Get(ctx, "日本"); !errors.Is(err, service.ErrOrgNotFound) {
		t.Fatalf("Get 日本 after the rename: %v, want ErrOrgNotFound", err)
	}
	if _, err := create("!!", "admin@bang.example.com"); err != nil {
		t.Fatalf("!! once \"_\" is free: %v", err)
	}
	findings, err := s.check.Check(ctx)
	if err != nil || len(findings) > 0 {
		t.Fatalf("check: %v, %v", findings, err)
	}
}
