package repository_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/storetest"
)

// exportModes are the two ways an export on the embedded store reads the
// ids first: past the driver (the embedded store's raw reader), and
// through it (FerretDB reached through MONGO_URI).
var exportModes = []struct {
	name string
	raw  bool
}{{"raw-ids", true}, {"driver-ids", false}}

// findLog counts the find commands a client sends: those by _id (a
// FindOne) and those of the whole collection.
type findLog struct {
	mu         sync.Mutex
	byID, full int
}

func (l *findLog) started(_ context.Context, e *event.CommandStartedEvent) {
	if e.CommandName != "find" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := e.Command.LookupErr("filter", "_id"); err == nil {
		l.byID++
	} else {
		l.full++
	}
}

func (l *findLog) reset() {
	l.mu.Lock()
	l.byID, l.full = 0, 0
	l.mu.Unlock()
}

func (l *findLog) counts() (byID, full int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byID, l.full
}

// exportFixture is a tenant collection on the embedded store read as the
// service reads it there (SetIDFiltersOnly), over a client whose finds
// finds counts.
type exportFixture struct {
	r     *repository.TenantRepository
	raw   bool // ids read by the raw reader
	tn    model.Tenant
	coll  *mongo.Collection
	finds *findLog
}

func newExportFixture(t *testing.T, raw bool) *exportFixture {
	t.Helper()
	ctx := context.Background()
	base := storetest.Database(t)
	f := &exportFixture{raw: raw, tn: model.Tenant{Slug: "export"}, finds: &findLog{}}
	client, err := mongo.Connect(options.Client().ApplyURI(storetest.URI()).SetMonitor(&event.CommandMonitor{Started: f.finds.started}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	db := client.Database(base.Name())
	f.r = repository.NewTenantRepository(db, 0)
	f.r.OnCreate(storetest.PrepareCollection(base))
	f.r.SetIDFiltersOnly(true)
	if raw {
		rr := storetest.RawReader(base)
		if rr == nil {
			t.Fatal("no raw reader on the embedded store")
		}
		f.r.ReadRaw(rr)
	}
	if _, err := f.r.Create(ctx, f.tn); err != nil {
		t.Fatal(err)
	}
	f.coll = db.Collection(repository.CollectionName(f.tn.Slug))
	return f
}

// insert writes docs in their order, in batches of up to 50.
func (f *exportFixture) insert(t *testing.T, docs []*model.Document) {
	t.Helper()
	for from := 0; from < len(docs); from += 50 {
		var batch []any
		for _, d := range docs[from:min(from+50, len(docs))] {
			batch = append(batch, d)
		}
		if _, err := f.coll.InsertMany(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
}

// export returns the ids ScanDocuments gives for org, calling during with
// each document first, and the finds it sent by _id and of the whole
// collection.
func (f *exportFixture) export(t *testing.T, org bson.ObjectID, during func(*model.Document)) (ids []bson.ObjectID, byID, full int) {
	t.Helper()
	f.finds.reset()
	err := f.r.ScanDocuments(context.Background(), f.tn, org, func(d *model.Document) error {
		if during != nil {
			during(d)
		}
		if d.Org != org && !d.Org.IsZero() {
			t.Fatalf("exported %s, a document of %s", d.ID.Hex(), d.Org.Hex())
		}
		if d.JSON != docJSON(d.ID) {
			t.Fatalf("document %s: data %s", d.ID.Hex(), d.JSON)
		}
		ids = append(ids, d.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	byID, full = f.finds.counts()
	return ids, byID, full
}

func docJSON(id bson.ObjectID) string { return `{"id":"` + id.Hex() + `"}` }

// exportDocs are n documents in id order: every third of other, two
// without _org, the rest of org; and the ids export should give for org.
func exportDocs(n int, org, other bson.ObjectID) (docs []*model.Document, want []bson.ObjectID) {
	now := model.Now()
	for i := range n {
		d := &model.Document{ID: bson.NewObjectID(), Org: org, CreatedAt: now, UpdatedAt: now}
		d.JSON = docJSON(d.ID)
		switch {
		case i%3 == 1:
			d.Org = other
		case i == 5 || i == n-2:
			d.Org = bson.ObjectID{}
		}
		if d.Org != other {
			want = append(want, d.ID)
		}
		docs = append(docs, d)
	}
	return docs, want
}

// eachExportMode runs test once in each export mode, over a fixture of
// its own and n documents of org (exportDocs), not yet written, and the
// ids to export.
func eachExportMode(t *testing.T, n int, test func(t *testing.T, f *exportFixture, org bson.ObjectID, docs []*model.Document, want []bson.ObjectID)) {
	for _, mode := range exportModes {
		t.Run(mode.name, func(t *testing.T) {
			f := newExportFixture(t, mode.raw)
			org := bson.NewObjectID()
			docs, want := exportDocs(n, org, bson.NewObjectID())
			test(t, f, org, docs, want)
		})
	}
}

// TestScanDocumentsSorted: a collection written in id order is exported in
// that order, in one pass and no read by _id; with the raw reader, the
// pass is the export's only find. Another organization's documents are
// left out, those without _org kept.
func TestScanDocumentsSorted(t *testing.T) {
	eachExportMode(t, 300, func(t *testing.T, f *exportFixture, org bson.ObjectID, docs []*model.Document, want []bson.ObjectID) {
		f.insert(t, docs)
		got, byID, full := f.export(t, org, nil)
		if !slices.Equal(got, want) {
			t.Fatalf("exported %d documents, want the %d of the organization in id order", len(got), len(want))
		}
		wantFull := 2 // the ids, then the pass
		if f.raw {
			wantFull = 1
		}
		if byID != 0 || full != wantFull {
			t.Fatalf("%d finds by _id and %d of the collection, want 0 and %d", byID, full, wantFull)
		}
	})
}

// TestScanDocumentsShuffled: a collection written out of id order is
// exported in id order, every document once, reading by _id only those
// outside the longest run in id order; for the near order concurrent
// writers leave, fewer than half of them.
func TestScanDocumentsShuffled(t *testing.T) {
	const n = 600
	orders := []struct {
		name string
		// key places the i-th document in id order among those written.
		key   func(rng *rand.Rand, i int) float64
		local bool
	}{
		{"local", func(rng *rand.Rand, i int) float64 { return float64(i) + 6*rng.Float64() }, true},
		{"global", func(rng *rand.Rand, _ int) float64 { return rng.Float64() }, false},
	}
	for _, order := range orders {
		t.Run(order.name, func(t *testing.T) {
			eachExportMode(t, n, func(t *testing.T, f *exportFixture, org bson.ObjectID, docs []*model.Document, want []bson.ObjectID) {
				written := shuffle(docs, order.key)
				f.insert(t, written)
				natural := make([]bson.ObjectID, len(written))
				for i, d := range written {
					natural[i] = d.ID
				}
				_, strays := repository.SplitIncreasing(natural)

				got, byID, full := f.export(t, org, nil)
				if !slices.Equal(got, want) {
					t.Fatalf("exported %d documents, want the %d of the organization once each in id order", len(got), len(want))
				}
				if byID != len(strays) || byID == 0 {
					t.Fatalf("%d finds by _id, want one for each of the %d strays", byID, len(strays))
				}
				if order.local && byID >= n/2 {
					t.Fatalf("%d finds by _id of %d documents written nearly in order", byID, n)
				}
				if wantFull := map[bool]int{true: 1, false: 2}[f.raw]; full != wantFull {
					t.Fatalf("%d finds of the whole collection, want %d", full, wantFull)
				}
				t.Logf("%d documents, %d read by _id", n, byID)
			})
		})
	}
}

// shuffle returns docs ordered by key.
func shuffle(docs []*model.Document, key func(*rand.Rand, int) float64) []*model.Document {
	rng := rand.New(rand.NewPCG(7, 11))
	keys := make([]float64, len(docs))
	idx := make([]int, len(docs))
	for i := range docs {
		keys[i], idx[i] = key(rng, i), i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(keys[a], keys[b]) })
	out := make([]*model.Document, len(docs))
	for i, j := range idx {
		out[i] = docs[j]
	}
	return out
}

// TestScanDocumentsWrittenDuring: during an export, a stray deleted before
// it is read is skipped, and documents written meanwhile are left out,
// whether their ids fall before or after those read; the rest comes out
// once each, in id order.
func TestScanDocumentsWrittenDuring(t *testing.T) {
	// More than an export's batch, so that the pass reads documents
	// after the writes.
	eachExportMode(t, 2500, func(t *testing.T, f *exportFixture, org bson.ObjectID, docs []*model.Document, want []bson.ObjectID) {
		// The last of org's documents is written first: a stray.
		gone := want[len(want)-1]
		last := slices.IndexFunc(docs, func(d *model.Document) bool { return d.ID == gone })
		written := append([]*model.Document{docs[last]}, docs[:last]...)
		written = append(written, docs[last+1:]...)
		f.insert(t, written)
		want = want[:len(want)-1]

		ctx := context.Background()
		now := model.Now()
		early := &model.Document{ID: bson.NewObjectIDFromTimestamp(time.Now().Add(-time.Hour)), Org: org, CreatedAt: now, UpdatedAt: now}
		once := false
		got, byID, _ := f.export(t, org, func(*model.Document) {
			if once {
				return
			}
			once = true
			late := &model.Document{ID: bson.NewObjectID(), Org: org, CreatedAt: now, UpdatedAt: now}
			for _, d := range []*model.Document{early, late} {
				d.JSON = docJSON(d.ID)
				if _, err := f.coll.InsertOne(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := f.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: gone}}); err != nil {
				t.Fatal(err)
			}
		})
		if !slices.Equal(got, want) {
			t.Fatalf("exported %d documents, want %d in id order (%s)", len(got), len(want), firstDifference(got, want))
		}
		if byID != 1 {
			t.Fatalf("%d finds by _id, want one, of the deleted stray", byID)
		}
	})
}

// firstDifference describes where got and want first differ.
func firstDifference(got, want []bson.ObjectID) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: %s, want %s", i, got[i].Hex(), want[i].Hex())
		}
	}
	return fmt.Sprintf("one is a prefix of the other: %d and %d", len(got), len(want))
}

// TestSplitIncreasing: the first part is a longest strictly increasing
// subsequence of the ids, in their order (its length checked against the
// quadratic count), the second the others, sorted.
func TestSplitIncreasing(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	less := func(a, b bson.ObjectID) int { return bytes.Compare(a[:], b[:]) }
	for round := range 300 {
		n := rng.IntN(40)
		ids := make([]bson.ObjectID, n)
		for i := range ids {
			ids[i][11] = byte(rng.IntN(60)) // repeats among them
		}
		in := slices.Clone(ids)
		longest := 0
		best := make([]int, n)
		for i := range in {
			best[i] = 1
			for j := range i {
				if less(in[j], in[i]) < 0 {
					best[i] = max(best[i], best[j]+1)
				}
			}
			longest = max(longest, best[i])
		}
		inc, others := repository.SplitIncreasing(ids)
		if len(inc) != longest {
			t.Fatalf("round %d: an increasing run of %d, want %d", round, len(inc), longest)
		}
		if !slices.IsSortedFunc(others, less) {
			t.Fatalf("round %d: the others are not sorted", round)
		}
		for i := 1; i < len(inc); i++ {
			if less(inc[i-1], inc[i]) >= 0 {
				t.Fatalf("round %d: the run is not strictly increasing", round)
			}
		}
		// inc is a subsequence of in, and others the rest.
		rest := []bson.ObjectID{}
		k := 0
		for _, id := range in {
			if k < len(inc) && inc[k] == id {
				k++
			} else {
				rest = append(rest, id)
			}
		}
		slices.SortFunc(rest, less)
		if k != len(inc) || !slices.Equal(rest, others) {
			t.Fatalf("round %d: the parts are not a split of the ids", round)
		}
	}
}
