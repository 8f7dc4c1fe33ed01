package model

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// AuditCollection is the collection of the audit logs of the
// organizations of one tenant database, in that database: every event of
// an organization has an _id that begins with the organization's id
// (EventKey), so that its log is a range of _ids.
const AuditCollection = "audit"

// LegacyAuditPrefix begins the name of a log the master database held
// before the logs moved into the tenant databases: "audit_" + the
// organization's id in hex, one collection per organization.
const LegacyAuditPrefix = "audit_"

// LegacyAuditOrg is the organization whose log the master database's
// collection name held, in that earlier layout.
func LegacyAuditOrg(name string) (bson.ObjectID, bool) {
	hex, ok := strings.CutPrefix(name, LegacyAuditPrefix)
	if !ok {
		return bson.ObjectID{}, false
	}
	id, err := bson.ObjectIDFromHex(hex)
	return id, err == nil
}

// Event is one entry of an organization's audit log. Seq counts the
// organization's events from 1 with no gaps; Hash chains it to the
// event before (see package audit for the canonical form). Source names
// what the event records (an operation's step, an invitation's expiry, or
// a request): its unique index keeps a step that runs again from adding
// the event twice. Source is not part of the event as clients see it.
type Event struct {
	// Key is the _id (EventKey): a string so that the embedded store looks
	// it up by its index (it does so for strings and ObjectIDs only).
	Key      string            `bson:"_id" json:"-"`
	Seq      int64             `bson:"seq" json:"seq"`
	ID       string            `bson:"id" json:"id"`
	OrgID    string            `bson:"org_id" json:"org_id"`
	Time     string            `bson:"time" json:"time"`
	Action   string            `bson:"action" json:"action"`
	Actor    Actor             `bson:"actor" json:"actor"`
	Targets  []Target          `bson:"targets" json:"targets"`
	Changes  map[string]Change `bson:"changes" json:"changes"`
	Context  EventContext      `bson:"context" json:"context"`
	PrevHash string            `bson:"prev_hash" json:"prev_hash"`
	Hash     string            `bson:"hash" json:"hash"`
	Source   string            `bson:"source" json:"-"`
}

// EventKey is the _id of the seq-th event of org's log: the
// organization's id in hex, ":", and seq in 12 digits, so that the _ids
// of one log sort in the order of seq, between EventKeyFrom(org) and
// EventKeyTo(org).
func EventKey(org bson.ObjectID, seq int64) string { return fmt.Sprintf("%s:%012d", org.Hex(), seq) }

// EventKeyFrom is the lowest _id of org's log; every one is below
// EventKeyTo(org).
func EventKeyFrom(org bson.ObjectID) string { return org.Hex() + ":" }

// EventKeyTo is just above every _id of org's log.
func EventKeyTo(org bson.ObjectID) string { return org.Hex() + ";" }

// EventKeyOrg is the organization of an event's _id.
func EventKeyOrg(key string) (bson.ObjectID, bool) {
	hex, _, ok := strings.Cut(key, ":")
	if !ok {
		return bson.ObjectID{}, false
	}
	id, err := bson.ObjectIDFromHex(hex)
	return id, err == nil
}

// EventID is the id of the seq-th event of org.
func EventID(org bson.ObjectID, seq int64) string { return fmt.Sprintf("%s:%d", org.Hex(), seq) }

// Actor is who did what an event records: an account, or the system (a
// sweeper, a recovery).
type Actor struct {
	Type  string `bson:"type" json:"type"`
	ID    string `bson:"id" json:"id"`
	Email string `bson:"email" json:"email"`
}

// Actor types.
const (
	ActorAccount = "account"
	ActorSystem  = "system"
)

// Target is what an event is about.
type Target struct {
	Type string `bson:"type" json:"type"`
	ID   string `bson:"id" json:"id"`
	Name string `bson:"name" json:"name"`
}

// Target types.
const (
	TargetOrganization = "organization"
	TargetAccount      = "account"
	TargetInvitation   = "invitation"
	TargetDocument     = "document"
)

// Change is one field's value before and after; nil is no value.
type Change struct {
	From *string `bson:"from" json:"from"`
	To   *string `bson:"to" json:"to"`
}

// EventContext is the request an event came from; empty for the system.
type EventContext struct {
	RequestID     string `bson:"request_id" json:"request_id"`
	ClientAddress string `bson:"client_address" json:"client_address"`
	UserAgent     string `bson:"user_agent" json:"user_agent"`
}

// PlannedEvent is an event an operation records once it is committed:
// fixed with its plan, so that whoever finishes the operation records the
// same event, once (its source is the operation's id and Key).
type PlannedEvent struct {
	Org     bson.ObjectID     `bson:"org"`
	Key     string            `bson:"key"`
	Action  string            `bson:"action"`
	Actor   Actor             `bson:"actor"`
	Targets []Target          `bson:"targets,omitempty"`
	Changes map[string]Change `bson:"changes,omitempty"`
	Context EventContext      `bson:"context"`
}

// Event is the event p plans, without its place in the log.
func (p PlannedEvent) Event(op bson.ObjectID) Event {
	return Event{
		Action: p.Action, Actor: p.Actor, Targets: p.Targets, Changes: p.Changes, Context: p.Context,
		Source: "op:" + op.Hex() + ":" + p.Key,
	}
}
