package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgsvc/orgsvc/internal/failpoint"
	"github.com/orgsvc/orgsvc/internal/mail"
	"github.com/orgsvc/orgsvc/internal/model"
	"github.com/orgsvc/orgsvc/internal/repository"
	"github.com/orgsvc/orgsvc/internal/security"
)

// Invitation errors.
var (
	ErrAlreadyMember      = errors.New("already a member")
	ErrInvitePending      = errors.New("invitation already pending")
	ErrInvitationNotFound = errors.New("invitation not found")
	ErrInvitationGone     = errors.New("invitation accepted, revoked or expired")
)

// InvitationSettings are how invitations are made and delivered.
type InvitationSettings struct {
	// TTL is how long an invitation may be accepted.
	TTL time.Duration
	// URL, when set, is the link in the mail, with {token} filled in.
	URL string
	// Outbox delivers the mails; nil: no mail, the inviter gets the token.
	Outbox *mail.Outbox
	// Mails is the outbox's store, for delivery states and clean-up.
	Mails *repository.OutboxRepository
}

// SetInvitations sets how invitations are made and delivered; call it
// before serving.
func (s *OrgService) SetInvitations(c InvitationSettings) {
	if c.TTL <= 0 {
		c.TTL = 168 * time.Hour
	}
	s.invites = c
}

// InvitationView is an invitation as the API shows it.
type InvitationView struct {
	model.Invitation
	State string
	// Delivery is the mail's: pending, sent or failed; "" without mail.
	Delivery string
}

// Invite invites email to the principal's organization with role. Admins
// invite admins, members and viewers; owners invite anyone. The claim on
// the address comes first, then the invitation, then its mail: a crash
// after the claim leaves a claim of no invitation, which the next invite
// of that address releases; one after the invitation leaves an invitation
// whose mail is missing, which DeliverMissing sends (with a new token). So
// no prefix needs undoing, and no operation is recorded. The token is
// returned only when there is no mail to carry it.
func (s *OrgService) Invite(ctx context.Context, p Principal, email, role string) (*InvitationView, string, error) {
	if !p.Can(model.RoleAdmin) || (role == model.RoleOwner && !p.Can(model.RoleOwner)) {
		return nil, "", ErrForbidden
	}
	email = model.NormalizeEmail(email)
	key := model.EmailKey(email)
	if a, err := s.master.AdminByEmailKey(ctx, key); err == nil {
		if _, err := s.master.Membership(ctx, a.ID, p.OrgID); err == nil {
			return nil, "", ErrAlreadyMember
		} else if !errors.Is(err, repository.ErrNotFound) {
			return nil, "", err
		}
	} else if !errors.Is(err, repository.ErrNotFound) {
		return nil, "", err
	}
	now := time.Now()
	inv := &model.Invitation{
		ID: bson.NewObjectID(), OrgID: p.OrgID, Email: email, Role: role, Status: model.InvitePending,
		InvitedBy: p.AdminID, CreatedAt: model.At(now), ExpiresAt: model.At(now.Add(s.invites.TTL)),
	}
	if err := s.claimInvitation(ctx, model.InvitationClaimID(p.OrgID, key), inv.ID); err != nil {
		return nil, "", err
	}
	token, hash, err := newInvitationToken(inv.ID)
	if err != nil {
		return nil, "", err
	}
	inv.TokenHash = hash
	if err := s.master.InsertInvitation(ctx, inv); err != nil {
		return nil, "", err
	}
	if err := s.recordInvitation(ctx, inv, p.actor(), ActInvitationCreated, "created"); err != nil {
		return nil, "", err // the mail goes with DeliverMissing, after the event
	}
	delivery, err := s.mailInvitation(ctx, inv, token)
	if err != nil {
		s.log.Warn("mail an invitation", "invitation_id", inv.ID.Hex(), "err", err)
	}
	view := &InvitationView{Invitation: *inv, State: model.InvitePending, Delivery: delivery}
	if s.invites.Outbox != nil {
		token = ""
	}
	return view, token, nil
}

// claimInvitation reserves an address's pending invitation. A claim whose
// invitation is missing (a crash between the two), or is no longer
// pending, is released and taken.
func (s *OrgService) claimInvitation(ctx context.Context, id string, inv bson.ObjectID) error {
	for range 2 {
		err := s.master.ClaimInvitation(ctx, id, inv)
		if !errors.Is(err, repository.ErrDuplicate) {
			return err
		}
		claim, err := s.master.InvitationClaim(ctx, id)
		if errors.Is(err, repository.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		held, err := s.master.Invitation(ctx, claim.InvitationID)
		switch {
		case err == nil && held.State(time.Now()) == model.InvitePending:
			return ErrInvitePending
		case err != nil && !errors.Is(err, repository.ErrNotFound):
			return err
		}
		if err := s.master.ReleaseInvitation(ctx, id, claim.InvitationID); err != nil {
			return err
		}
	}
	return ErrOrgBusy
}

// newInvitationToken returns a token for invitation id ("<id>.<secret>",
// 256 random bits) and the hash stored in its place.
func newInvitationToken(id bson.ObjectID) (token, hash string, err error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", "", err
	}
	token = id.Hex() + "." + base64.RawURLEncoding.EncodeToString(secret)
	return token, tokenHash(token), nil
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// mailInvitation puts the invitation's mail in the outbox; the delivery
// state, "" without mail.
func (s *OrgService) mailInvitation(ctx context.Context, inv *model.Invitation, token string) (string, error) {
	if s.invites.Outbox == nil {
		return "", nil
	}
	org, err := s.master.Organization(ctx, inv.OrgID)
	if err != nil {
		return model.DeliveryPending, err
	}
	text := fmt.Sprintf("You are invited to join %s as %s.\n\n", org.Name, inv.Role)
	if s.invites.URL != "" {
		text += "Accept the invitation: " + strings.ReplaceAll(s.invites.URL, "{token}", token) + "\n\n"
	}
	text += "Your invitation token: " + token + "\n\nIt can be used until " + inv.ExpiresAt.UTC().Format(time.RFC1123) + ".\n"
	err = s.invites.Outbox.Enqueue(ctx, &model.OutboxEntry{
		ID: inv.ID, OrgID: inv.OrgID, To: inv.Email, Subject: "Invitation to join " + org.Name, Text: text,
	})
	return model.DeliveryPending, err
}

// delivery is the state of an invitation's mail; "" without mail.
func (s *OrgService) delivery(ctx context.Context, id bson.ObjectID) string {
	if s.invites.Mails == nil {
		return ""
	}
	e, err := s.invites.Mails.Get(ctx, id)
	if err != nil {
		return ""
	}
	return e.State
}

// Invitations lists the principal's organization's invitations, the
// oldest first, those of one state when status is set.
func (s *OrgService) Invitations(ctx context.Context, p Principal, status string) ([]InvitationView, error) {
	if !p.Can(model.RoleAdmin) {
		return nil, ErrForbidden
	}
	all, err := s.master.InvitationsOf(ctx, p.OrgID)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := []InvitationView{}
	for _, inv := range all {
		state := inv.State(now)
		if status != "" && state != status {
			continue
		}
		out = append(out, InvitationView{Invitation: inv, State: state, Delivery: s.delivery(ctx, inv.ID)})
	}
	return out, nil
}

// pendingOf returns the principal's organization's invitation id, pending,
// if the principal may manage it.
func (s *OrgService) pendingOf(ctx context.Context, p Principal, id bson.ObjectID) (*model.Invitation, error) {
	if !p.Can(model.RoleAdmin) {
		return nil, ErrForbidden
	}
	inv, err := s.master.Invitation(ctx, id)
	if errors.Is(err, repository.ErrNotFound) || (err == nil && inv.OrgID != p.OrgID) {
		return nil, ErrInvitationNotFound
	}
	if err != nil {
		return nil, err
	}
	if inv.Role == model.RoleOwner && !p.Can(model.RoleOwner) {
		return nil, ErrForbidden
	}
	if inv.State(time.Now()) != model.InvitePending {
		return nil, ErrInvitationGone
	}
	return inv, nil
}

// Revoke ends a pending invitation: its token stops working, its mail is
// erased if not sent yet, and the address may be invited again.
func (s *OrgService) Revoke(ctx context.Context, p Principal, id bson.ObjectID) error {
	inv, err := s.pendingOf(ctx, p, id)
	if err != nil {
		return err
	}
	if err := s.master.SetInvitationStatus(ctx, id, model.InviteRevoked, bson.ObjectID{}); err != nil {
		return err
	}
	if err := s.recordInvitation(ctx, inv, p.actor(), ActInvitationRevoked, "revoked"); err != nil {
		return err
	}
	return s.endInvitation(ctx, inv)
}

// endInvitation releases a settled invitation's claim and mail.
func (s *OrgService) endInvitation(ctx context.Context, inv *model.Invitation) error {
	if s.invites.Mails != nil {
		if err := s.invites.Mails.Delete(ctx, inv.ID); err != nil {
			return err
		}
	}
	return s.master.ReleaseInvitation(ctx, model.InvitationClaimID(inv.OrgID, model.EmailKey(inv.Email)), inv.ID)
}

// Resend gives a pending invitation a new token and expiry, and mails it
// again (the old token stops working); without mail the token is returned.
func (s *OrgService) Resend(ctx context.Context, p Principal, id bson.ObjectID) (*InvitationView, string, error) {
	inv, err := s.pendingOf(ctx, p, id)
	if err != nil {
		return nil, "", err
	}
	token, err := s.renew(ctx, inv)
	if err != nil {
		return nil, "", err
	}
	if err := s.recordInvitation(ctx, inv, p.actor(), ActInvitationResent, ""); err != nil {
		return nil, "", err
	}
	view := &InvitationView{Invitation: *inv, State: model.InvitePending, Delivery: s.delivery(ctx, inv.ID)}
	if s.invites.Outbox != nil {
		token = ""
	}
	return view, token, nil
}

// renew replaces an invitation's token, then its mail.
func (s *OrgService) renew(ctx context.Context, inv *model.Invitation) (string, error) {
	token, hash, err := newInvitationToken(inv.ID)
	if err != nil {
		return "", err
	}
	inv.TokenHash, inv.ExpiresAt = hash, model.At(time.Now().Add(s.invites.TTL))
	if err := s.master.RenewInvitation(ctx, inv.ID, hash, inv.ExpiresAt); err != nil {
		return "", err
	}
	if s.invites.Mails != nil {
		if err := s.invites.Mails.Delete(ctx, inv.ID); err != nil {
			return "", err
		}
	}
	if _, err := s.mailInvitation(ctx, inv, token); err != nil {
		return "", err
	}
	return token, nil
}

// DeliverMissing mails, with a new token, every pending invitation whose
// mail is missing (its instance died between the two writes); it returns
// how many.
func (s *OrgService) DeliverMissing(ctx context.Context) (int, error) {
	if s.invites.Outbox == nil {
		return 0, nil
	}
	all, err := s.master.AllInvitations(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, inv := range all {
		if inv.State(time.Now()) != model.InvitePending || time.Since(inv.CreatedAt) < time.Minute {
			continue // a fresh one's mail may be on its way
		}
		if _, err := s.invites.Mails.Get(ctx, inv.ID); !errors.Is(err, repository.ErrNotFound) {
			continue
		}
		// The event, if its instance died before it: the source is the
		// invitation's, so it is recorded once.
		inviter := model.Actor{Type: model.ActorAccount, ID: inv.InvitedBy.Hex()}
		if a, err := s.master.Admin(ctx, inv.InvitedBy); err == nil {
			inviter.Email = a.Email
		}
		if err := s.recordInvitation(ctx, &inv, inviter, ActInvitationCreated, "created"); err != nil {
			return n, err
		}
		if _, err := s.renew(ctx, &inv); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// InvitationLive says whether invitation id still waits to be accepted:
// the outbox's test before it sends a mail.
func (s *OrgService) InvitationLive(ctx context.Context, id bson.ObjectID) (bool, error) {
	inv, err := s.master.Invitation(ctx, id)
	if errors.Is(err, repository.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return inv.State(time.Now()) == model.InvitePending, nil
}

// Accept accepts an invitation with its token. An address without an
// account gets one with password; one with an account must give its
// password (a wrong one is ErrInvalidCredentials, and the invitation stays
// usable). The membership is made by an operation of the organization.
// The answer is a token for the organization.
func (s *OrgService) Accept(ctx context.Context, token, password string) (string, error) {
	hexID, _, _ := strings.Cut(token, ".")
	id, err := bson.ObjectIDFromHex(hexID)
	if err != nil {
		return "", ErrInvitationNotFound
	}
	inv, err := s.master.Invitation(ctx, id)
	if errors.Is(err, repository.ErrNotFound) {
		return "", ErrInvitationNotFound
	}
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare([]byte(tokenHash(token)), []byte(inv.TokenHash)) != 1 {
		return "", ErrInvitationNotFound
	}
	if inv.State(time.Now()) != model.InvitePending {
		return "", ErrInvitationGone
	}
	if len(password) > security.MaxPasswordBytes {
		return "", ErrPasswordTooLong
	}
	plan := model.OperationPlan{Invitation: inv.ID, Role: inv.Role, Email: inv.Email, Grant: bson.NewObjectID()}
	account, err := s.master.AdminByEmailKey(ctx, model.EmailKey(inv.Email))
	switch {
	case err == nil:
		ok, err := s.passwords.Check(ctx, account.PasswordHash, password)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", ErrInvalidCredentials
		}
		plan.Member = account.ID
	case errors.Is(err, repository.ErrNotFound):
		if utf8.RuneCountInString(password) < 8 {
			return "", &InvalidError{Field: "password", Message: "ensure this value has at least 8 characters", Type: "value_error.any_str.min_length"}
		}
		if plan.PasswordHash, err = s.passwords.Hash(ctx, password); err != nil {
			return "", err
		}
		plan.Member, plan.NewAccount = bson.NewObjectID(), true
	default:
		return "", err
	}
	plan.Events = []model.PlannedEvent{planned(ctx, inv.OrgID, "accepted", ActInvitationAccepted, accountActor(plan.Member, inv.Email),
		[]model.Target{invitationTarget(inv.ID, inv.Email), accountTarget(plan.Member, inv.Email)},
		map[string]model.Change{"role": {To: &plan.Role}})}
	r, ctx, cancel, err := s.run.Begin(ctx, model.OpAccept, inv.OrgID, plan)
	if err != nil {
		return "", err
	}
	defer cancel()
	if _, err := s.run.Drive(ctx, r); err != nil {
		return "", err
	}
	org, err := s.master.Organization(ctx, inv.OrgID)
	if err != nil {
		return "", err
	}
	a, err := s.master.Admin(ctx, plan.Member)
	if err != nil {
		return "", err
	}
	m := &model.Membership{AccountID: a.ID, OrgID: org.ID, Role: plan.Role, Grant: plan.Grant}
	return s.auth.issue(a, org, m, time.Time{})
}

// prepareAccept makes the account (for a new address) and the membership,
// once the invitation is found still pending.
func (s *OrgService) prepareAccept(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	inv, err := s.master.Invitation(ctx, p.Invitation)
	if errors.Is(err, repository.ErrNotFound) {
		return ErrInvitationGone
	}
	if err != nil {
		return err
	}
	if inv.State(time.Now()) != model.InvitePending {
		return ErrInvitationGone
	}
	if p.NewAccount {
		if err := s.master.ClaimEmail(ctx, model.EmailKey(p.Email), p.Member); err != nil {
			return mapDuplicate(err, ErrEmailTaken)
		}
		at := model.At(r.Op.StartedAt)
		a := &model.Admin{ID: p.Member, Email: p.Email, PasswordHash: p.PasswordHash, Role: model.RoleAdmin, CreatedAt: at, UpdatedAt: at, Teams: true}
		if err := s.master.InsertAdmin(ctx, a); err != nil {
			return err
		}
	}
	m := &model.Membership{AccountID: p.Member, OrgID: r.Op.OrgID, Role: p.Role, Grant: p.Grant, JoinedAt: model.At(r.Op.StartedAt)}
	if err := s.master.InsertMembership(ctx, m); err != nil {
		return mapDuplicate(err, ErrAlreadyMember)
	}
	failpoint.Reach("accept:after-membership")
	return nil
}

// completeAccept settles the invitation: accepted, its claim and mail gone.
func (s *OrgService) completeAccept(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	defer s.forgetAdmin(p.Member)
	failpoint.Reach("accept:before-settle")
	if err := s.master.SetInvitationStatus(ctx, p.Invitation, model.InviteAccepted, p.Member); err != nil {
		return err
	}
	inv, err := s.master.Invitation(ctx, p.Invitation)
	if err != nil {
		return err
	}
	return s.endInvitation(ctx, inv)
}

// undoAccept removes what prepareAccept made: the membership if it is this
// operation's (its grant), and the new account.
func (s *OrgService) undoAccept(ctx context.Context, r *Run) error {
	p := r.Op.Plan
	if m, err := s.master.Membership(ctx, p.Member, r.Op.OrgID); err == nil && m.Grant == p.Grant {
		if err := s.master.DeleteMembership(ctx, m.ID); err != nil {
			return err
		}
	} else if err != nil && !errors.Is(err, repository.ErrNotFound) {
		return err
	}
	if !p.NewAccount {
		return nil
	}
	if a, err := s.master.Admin(ctx, p.Member); err == nil && a.CreatedAt.Equal(model.At(r.Op.StartedAt)) {
		if err := s.dropIfAlone(ctx, p.Member); err != nil {
			return err
		}
	} else if err != nil && !errors.Is(err, repository.ErrNotFound) {
		return err
	}
	return s.master.ReleaseEmail(ctx, model.EmailKey(p.Email), p.Member)
}

// endInvitations removes an organization's invitations, their claims and
// mails (its deletion).
func (s *OrgService) endInvitations(ctx context.Context, org bson.ObjectID) error {
	all, err := s.master.InvitationsOf(ctx, org)
	if err != nil {
		return err
	}
	for i := range all {
		if err := s.endInvitation(ctx, &all[i]); err != nil {
			return err
		}
		if err := s.master.DeleteInvitation(ctx, all[i].ID); err != nil {
			return err
		}
	}
	if s.invites.Mails != nil {
		return s.invites.Mails.DeleteForOrg(ctx, org)
	}
	return nil
}
