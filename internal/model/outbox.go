package model

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The mail outbox. An entry's _id is the id of what the mail is for (an
// invitation, say), so there is one mail per thing. OutboxAttempts holds
// the attempt marks, "<entry id>:<n>": inserting one is the exclusive right
// to make attempt n (a Lease document).
const (
	Outbox         = "outbox"
	OutboxAttempts = "outbox_attempts"
)

// Delivery states of an outbox entry.
const (
	DeliveryPending = "pending"
	DeliverySent    = "sent"
	DeliveryFailed  = "failed"
)

// OutboxEntry is one mail to deliver. Text may carry a secret (an
// invitation token): it is erased once the mail is sent or given up.
// MessageID is fixed when the entry is written, so a mail sent again after
// a crash carries the same Message-ID header.
type OutboxEntry struct {
	ID        bson.ObjectID `bson:"_id"`
	OrgID     bson.ObjectID `bson:"org_id"`
	To        string        `bson:"to"`
	Subject   string        `bson:"subject"`
	Text      string        `bson:"text"`
	MessageID string        `bson:"message_id"`
	State     string        `bson:"state"`
	// Attempts is the number of the last attempt mark used: attempts made,
	// and those whose holder died.
	Attempts  int       `bson:"attempts"`
	NextAt    time.Time `bson:"next_at"`
	LastError string    `bson:"last_error,omitempty"`
	CreatedAt time.Time `bson:"created_at"`
	SentAt    time.Time `bson:"sent_at,omitempty"`
}
