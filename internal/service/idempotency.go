package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/jsondoc"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
)

// IdempotencyTTL is how long an Idempotency-Key of a document create is
// kept: a retry with it within that time gets the first answer.
const IdempotencyTTL = 24 * time.Hour

// MaxIdempotencyKey is the longest Idempotency-Key accepted, in bytes.
const MaxIdempotencyKey = 255

// KeepKeys makes CreateOnce honour Idempotency-Keys, kept in keys.
func (s *DocumentService) KeepKeys(keys *repository.KeyRepository) { s.keys = keys }

// CreateOnce is Create for a request with an Idempotency-Key (the IETF
// httpapi draft's semantics): the first request with key claims it, with
// the document's id and time fixed before anything is written; a retry
// with the same body finishes or repeats that create and answers it as the
// first answer was; the same key with another body is refused. A create
// interrupted anywhere (a timeout, a crash) leaves the claim, so the
// retry writes the same document: never a second one.
func (s *DocumentService) CreateOnce(ctx context.Context, p Principal, key string, doc jsondoc.Doc) (*model.Document, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if s.keys == nil {
		return s.Create(ctx, p, doc)
	}
	sum := sha256.Sum256(doc.JSON)
	claim := &model.IdempotencyKey{
		ID: repository.KeyID(p.OrgID, key), Org: p.OrgID, BodyHash: hex.EncodeToString(sum[:]),
		DocID: bson.NewObjectID(), CreatedAt: model.Now(),
	}
	k, err := s.claimKey(ctx, claim)
	if err != nil {
		return nil, err
	}
	if k.BodyHash != claim.BodyHash {
		return nil, &InvalidError{In: "header", Field: "Idempotency-Key", Message: "this key was used with another body within 24 hours", Type: "value_error.idempotency_key.reused"}
	}
	d := &model.Document{ID: k.DocID, Org: p.OrgID, JSON: string(doc.JSON), Fields: doc.Fields, CreatedAt: k.CreatedAt, UpdatedAt: k.CreatedAt}
	if k.Done {
		return d, nil // the first answer, made again: same id, data and times
	}
	if err := s.fits(ctx, p, 1, int64(len(doc.JSON))); err != nil {
		return nil, err
	}
	failpoint.Reach("keyed-create:after-claim")
	out, err := s.create(ctx, p, d, true)
	if err != nil {
		return nil, err
	}
	failpoint.Reach("keyed-create:after-insert")
	if err := s.keys.MarkDone(ctx, k.ID); err != nil {
		return nil, err // the document stands; the retry finds it and answers it
	}
	return out, nil
}

// claimKey inserts claim, or returns the live record of its key; an
// expired record is forgotten and the key claimed anew.
func (s *DocumentService) claimKey(ctx context.Context, claim *model.IdempotencyKey) (*model.IdempotencyKey, error) {
	for range 3 {
		err := s.keys.Claim(ctx, claim)
		if err == nil {
			return claim, nil
		}
		if !errors.Is(err, repository.ErrDuplicate) {
			return nil, err
		}
		k, err := s.keys.Key(ctx, claim.ID)
		switch {
		case errors.Is(err, repository.ErrNotFound):
			continue // forgotten meanwhile
		case err != nil:
			return nil, err
		case k.CreatedAt.Before(claim.CreatedAt.Add(-IdempotencyTTL)):
			if err := s.keys.Forget(ctx, k.ID, k.CreatedAt); err != nil {
				return nil, err
			}
			continue
		}
		return k, nil
	}
	return nil, ErrOrgBusy
}

// checkKey refuses a key that is empty, longer than MaxIdempotencyKey or
// holds anything but visible ASCII.
func checkKey(key string) error {
	ok := key != "" && len(key) <= MaxIdempotencyKey
	for i := 0; ok && i < len(key); i++ {
		ok = key[i] > 0x20 && key[i] < 0x7f
	}
	if !ok {
		return &InvalidError{In: "header", Field: "Idempotency-Key", Message: "must be 1 to 255 visible ASCII characters", Type: "value_error.idempotency_key"}
	}
	return nil
}

// SweepKeys deletes expired Idempotency-Keys every interval until ctx ends.
func (s *DocumentService) SweepKeys(ctx context.Context, interval time.Duration) {
	if s.keys == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.keys.Sweep(ctx, model.Now().Add(-IdempotencyTTL)); err != nil && ctx.Err() == nil {
			s.log.Warn("sweep expired idempotency keys", "err", err)
		} else if n > 0 {
			s.log.Debug("swept expired idempotency keys", "count", n)
		}
	}
}
