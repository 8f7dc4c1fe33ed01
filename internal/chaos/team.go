package chaos

import (
	"fmt"
	"net/http"
)

// memberRec is a colleague a client invited into one of its organizations.
type memberRec struct {
	id, email, password string
	role                string // the last acknowledged role
	removed             bool   // a removal was acknowledged
	// uncertain: a change of it got no definitive answer; it is checked
	// no more.
	uncertain bool
}

// certainMembers are the members whose state the client knows.
func (o *orgRec) certainMembers() []*memberRec {
	var out []*memberRec
	for _, m := range o.members {
		if !m.uncertain {
			out = append(out, m)
		}
	}
	return out
}

// teamChoices are the team operations on o, with their weights.
func (c *client) teamChoices(o *orgRec) []choice {
	if o.uncertain() {
		return nil
	}
	out := []choice{{when(len(o.members) < 6, 3, 0), func() { c.invite(o) }}}
	var present []*memberRec
	for _, m := range o.certainMembers() {
		if !m.removed {
			present = append(present, m)
		}
	}
	if len(present) > 0 {
		m := present[c.rng.IntN(len(present))]
		out = append(out,
			choice{2, func() { c.changeRole(o, m) }},
			choice{1, func() { c.removeMember(o, m) }},
			choice{2, func() { c.memberLogin(o, m) }},
		)
	}
	return out
}

// invite invites a new address as a member, and accepts for it.
func (c *client) invite(o *orgRec) {
	c.n++
	m := &memberRec{email: fmt.Sprintf("m%d.%d@chaos.example.com", c.idx, c.n), password: "member-pass-1", role: "member"}
	res := c.call("invite", "POST", "/org/invitations", o.token, map[string]string{"email": m.email, "role": "member"}, false)
	if res.ans == nil || res.ans.status != http.StatusCreated {
		if res.ans != nil && !res.unknown && res.ans.status != http.StatusConflict {
			c.r.violate("unexpected-answer", "invite "+res.first(), fmt.Sprintf("invitation to %s answered %s", o.id, res.ans), append(res.reqIDs, o.id)...)
		}
		return
	}
	c.r.ack("invite")
	token := res.ans.str("token")
	res = c.call("accept", "POST", "/invitations/accept", "", map[string]string{"token": token, "password": m.password}, true)
	a := res.ans
	switch {
	case a != nil && a.status == http.StatusOK:
		me := c.call("me", "GET", "/me", a.str("access_token"), nil, false)
		if me.ans == nil || me.ans.status != http.StatusOK {
			m.uncertain = true
		} else {
			m.id = me.ans.str("id")
		}
		c.r.ack("accept")
	case a != nil && !res.unknown:
		c.r.violate("unexpected-answer", "accept "+res.first(), fmt.Sprintf("accept of an invitation to %s answered %s", o.id, a), append(res.reqIDs, o.id)...)
		return
	default:
		m.uncertain = true // may have joined
	}
	o.members = append(o.members, m)
}

// changeRole moves a member between member and viewer.
func (c *client) changeRole(o *orgRec, m *memberRec) {
	to := map[string]string{"member": "viewer", "viewer": "member"}[m.role]
	res := c.call("role-change", "PATCH", "/org/members/"+m.id, o.token, map[string]string{"role": to}, true)
	a := res.ans
	switch {
	case a != nil && a.status == http.StatusOK && a.str("role") == to:
		m.role = to
		c.r.ack("role-change")
	case a != nil && a.status == http.StatusConflict:
		c.r.refusal("role-change: " + a.detail())
		if res.unknown {
			m.uncertain = true
		}
	case a != nil && !res.unknown:
		c.r.violate("unexpected-answer", "role-change "+res.first(), fmt.Sprintf("role change of %s in %s to %s answered %s", m.email, o.id, to, a), append(res.reqIDs, o.id)...)
	default:
		m.uncertain = true
	}
}

// removeMember removes a member; its account, in no other organization,
// goes with it.
func (c *client) removeMember(o *orgRec, m *memberRec) {
	res := c.call("member-remove", "DELETE", "/org/members/"+m.id, o.token, nil, true)
	a := res.ans
	switch {
	case a != nil && a.status == http.StatusNoContent:
		m.removed = true
		c.r.ack("member-remove")
	case a != nil && a.status == http.StatusNotFound && res.unknown:
		m.removed = true // removed by an attempt that got no answer
		c.r.ack("member-remove (404 on retry)")
	case a != nil && a.status == http.StatusConflict:
		c.r.refusal("member-remove: " + a.detail())
		if res.unknown {
			m.uncertain = true
		}
	case a != nil && !res.unknown:
		c.r.violate("unexpected-answer", "member-remove "+res.first(), fmt.Sprintf("removal of %s from %s answered %s", m.email, o.id, a), append(res.reqIDs, o.id)...)
	default:
		m.uncertain = true
	}
}

// memberLogin makes sure an acknowledged member logs in to o with its
// acknowledged role.
func (c *client) memberLogin(o *orgRec, m *memberRec) {
	ok := func() bool {
		res := c.call("member-login", "POST", "/admin/login", "", map[string]string{"email": m.email, "password": m.password, "organization_name": o.name}, false)
		if res.ans == nil {
			return true // no verdict
		}
		return res.ans.status == http.StatusOK
	}
	if ok() {
		c.r.ack("member-login")
		return
	}
	if c.lasting(ok) && !o.uncertain() {
		c.r.violate("lost-member", fmt.Sprintf("member %s of %s", m.email, o.id),
			fmt.Sprintf("its acceptance was acknowledged, but it cannot log in to %q %s later", o.name, cacheGrace), o.id, m.id)
	}
}
