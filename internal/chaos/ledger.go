package chaos

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// A client's ledger holds what the service acknowledged to it (a 2xx),
// and, for each request that got no definitive answer, what that request
// may have done. The verification holds the store to it.

// orgRec is one organization a client signed up.
type orgRec struct {
	id       string // _id, hex
	adminID  string
	name     string // the last acknowledged name
	email    string
	password string
	token    string
	// names are every name the organization was acknowledged under, in
	// order (name is the last).
	names []string

	deleted bool // a deletion was acknowledged
	// maybeNames are names an unanswered rename may have given it;
	// maybeDeleted says an unanswered deletion may have removed it. An
	// organization with either is uncertain: no lifecycle operation is
	// started on it until a read settles which it is.
	maybeNames   []string
	maybeDeleted bool
	// uncertainAt is when the latest of those requests was given up on or
	// refused: until its operation has surely been recovered (a few
	// leases later), finding the organization as it was proves nothing.
	uncertainAt time.Time

	docs map[string]*docRec
	// order is the ids of docs in the order they were made, for picking.
	order []string
	// maybeTags are the tags of document creates that got no answer, or
	// were answered only after a retry: a document carrying one may exist
	// without being in docs.
	maybeTags map[string]bool
	// keyed are the tags of creates sent with an Idempotency-Key.
	keyed map[string]bool
	// members are the colleagues invited into it (team.go).
	members []*memberRec
}

// hasTag reports whether the ledger holds a document of the create tag.
func (o *orgRec) hasTag(tag string) bool {
	for _, d := range o.docs {
		if d.tag == tag {
			return true
		}
	}
	return false
}

func (o *orgRec) uncertain() bool { return len(o.maybeNames) > 0 || o.maybeDeleted }

// mayBeRenamed records an unanswered rename to name.
func (o *orgRec) mayBeRenamed(name string) {
	o.maybeNames, o.uncertainAt = []string{name}, time.Now()
}

// mayBeDeleted records an unanswered deletion.
func (o *orgRec) mayBeDeleted() {
	o.maybeDeleted, o.uncertainAt = true, time.Now()
}

// live reports whether the organization exists for all the client knows.
func (o *orgRec) live() bool { return !o.deleted && !o.maybeDeleted }

// docRec is one document a client made.
type docRec struct {
	id  string
	tag string
	// states are the contents it may have, canonical JSON: after an
	// acknowledged write, what that write left (one state, or one per
	// possible base for a patch on an uncertain base); an unanswered write
	// adds what it would have left.
	states []string

	deleted      bool // a deletion was acknowledged (or a retried one answered 404)
	maybeDeleted bool // a deletion got no answer
}

// maxStates bounds docRec.states; beyond it the oldest are forgotten
// (never reached in practice: a write gets a definitive answer within
// its retries nearly always).
const maxStates = 32

// canonical re-encodes JSON with sorted keys and numbers as written, so
// that equal documents compare equal as strings; "" when raw is not JSON.
func canonical(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return ""
	}
	out, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(out)
}

// merge applies the merge patch to each of states and returns the
// results, canonical and without duplicates.
func merge(states []string, patch []byte) []string {
	var out []string
	for _, s := range states {
		m, err := jsonpatch.MergePatch([]byte(s), patch)
		if err != nil {
			continue
		}
		if c := canonical(m); c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// union adds more to states, without duplicates, keeping at most
// maxStates.
func union(states, more []string) []string {
	for _, s := range more {
		if !slices.Contains(states, s) {
			states = append(states, s)
		}
	}
	if len(states) > maxStates {
		states = states[len(states)-maxStates:]
	}
	return states
}

// tagOf returns the "tag" and "org" members of a document's content.
func tagOf(raw []byte) (tag, org string) {
	var v struct {
		Tag string `json:"tag"`
		Org string `json:"org"`
	}
	_ = json.Unmarshal(raw, &v)
	return v.Tag, v.Org
}
