#!/usr/bin/env bash
# A walk through the orgsvc API with curl: sign up an organization, log in,
# look it up, store, read, list, patch, replace and delete a document,
# invite a colleague and hand the organization over to them (the first
# owner steps down and leaves), and, as the new owner, rename the
# organization (earlier tokens keep working), change the owner's password
# (earlier tokens stop working), and delete it. Every call's status is
# checked; the script stops with a message and a non-zero exit at the
# first unexpected answer.
#
#   BASE_URL=http://localhost:8000 examples/quickstart.sh
#
# BASE_URL defaults to http://localhost:8000 (`make run`). Each run signs up
# an organization of its own, so it can run again and again against the same
# server. It uses jq when it is installed, and a grep/sed fallback otherwise
# (NO_JQ=1 forces the fallback).
set -euo pipefail

BASE_URL="${BASE_URL:-http://localhost:8000}"
BASE_URL="${BASE_URL%/}"

die() {
	printf 'quickstart: %s\n' "$*" >&2
	exit 1
}

command -v curl >/dev/null 2>&1 || die "curl is needed (apt-get install -y curl)"
use_jq=0
if [ "${NO_JQ:-0}" != 1 ] && command -v jq >/dev/null 2>&1; then
	use_jq=1
fi

body="$(mktemp)"
trap 'rm -f "$body"' EXIT

# call STEP WANT METHOD PATH [CURL-ARGS...]: sends the request, prints the
# step and the status, and stops unless the status is WANT. The answer's
# body is left in $body.
call() {
	local step="$1" want="$2" method="$3" path="$4" status
	shift 4
	if ! status="$(curl -sS -o "$body" -w '%{http_code}' -X "$method" "$@" "$BASE_URL$path")"; then
		die "$step: no answer from $BASE_URL (is the service running? start it with 'make run')"
	fi
	printf '%-44s %s %s -> %s\n' "$step" "$method" "${path%%\?*}" "$status"
	if [ "$status" != "$want" ]; then
		printf 'quickstart: %s: got status %s, want %s. Answer:\n' "$step" "$status" "$want" >&2
		cat "$body" >&2
		printf '\n' >&2
		exit 1
	fi
}

# field NAME: the top-level string member NAME of the last answer.
field() {
	local v
	if [ "$use_jq" = 1 ]; then
		v="$(jq -r --arg f "$1" '.[$f] // empty | strings' "$body")"
	else
		# The first "NAME":"value" pair: top-level members come first in
		# every answer this script reads.
		v="$(grep -o "\"$1\"[[:space:]]*:[[:space:]]*\"[^\"]*\"" "$body" | head -n 1 |
			sed 's/^.*:[[:space:]]*"\(.*\)"$/\1/')" || true
	fi
	[ -n "$v" ] || die "the answer has no \"$1\": $(cat "$body")"
	printf '%s' "$v"
}

# expect_in TEXT WHAT: stops unless the last answer contains TEXT.
expect_in() {
	grep -qF -- "$1" "$body" || die "$2: the answer does not contain $1: $(cat "$body")"
}

# take_token: uses the access_token of the last answer from now on; the
# one used so far stays in old_auth.
take_token() {
	old_auth="${AUTH:-}"
	AUTH="Authorization: Bearer $(field access_token)"
}

JSON='Content-Type: application/json'

# set_role STEP ID ROLE MEMBER_AUTH: $AUTH gives member ID the role, which
# ends the member's token MEMBER_AUTH.
set_role() {
	call "$1" 200 PATCH "/org/members/$2" -H "$AUTH" -H "$JSON" -d "{\"role\":\"$3\"}"
	expect_in "\"role\":\"$3\"" "$1"
	call "the role change ended their token" 401 GET /org/documents -H "$4"
}

# log_in STEP WANT EMAIL PASSWORD: POST /admin/login as that account.
log_in() {
	call "$1" "$2" POST /admin/login -H "$JSON" -d "{\"email\":\"$3\",\"password\":\"$4\"}"
}
run="$(date +%s)-${RANDOM}"
name="Quickstart ${run}"
new_name="Quickstart Renamed ${run}"
email="admin+${run}@quickstart.example.com"
password="correct-horse-${RANDOM}"

printf 'orgsvc quickstart against %s (organization "%s")\n\n' "$BASE_URL" "$name"

call "health" 200 GET /health

call "sign up an organization (no token)" 201 POST /org/create -H "$JSON" \
	-d "{\"organization_name\":\"$name\",\"email\":\"$email\",\"password\":\"$password\"}"
collection="$(field collection_name)"
printf '    collection: %s\n' "$collection"

call "look it up by name" 200 GET /org/get -G --data-urlencode "organization_name=$name"
expect_in "\"$name\"" "look it up by name"

log_in "log in" 200 "$email" "$password"
take_token

call "store a document" 201 POST /org/documents -H "$AUTH" -H "$JSON" \
	-d '{"kind":"invoice","total":120,"lines":[[1,2],[3]]}'
id="$(field id)"
printf '    id: %s\n' "$id"

call "read it" 200 GET "/org/documents/$id" -H "$AUTH"
expect_in '"kind":"invoice"' "read it"

call "list documents with a filter" 200 GET /org/documents -H "$AUTH" -G \
	--data-urlencode 'filter={"kind":"invoice"}' --data-urlencode limit=10
expect_in "\"$id\"" "list documents with a filter"

call "merge-patch it" 200 PATCH "/org/documents/$id" -H "$AUTH" -H "$JSON" \
	-d '{"paid":true,"lines":null}'
expect_in '"paid":true' "merge-patch it"

call "replace its data" 200 PUT "/org/documents/$id" -H "$AUTH" -H "$JSON" \
	-d '{"kind":"receipt","total":120}'
expect_in '"kind":"receipt"' "replace its data"

call "delete it" 204 DELETE "/org/documents/$id" -H "$AUTH"
call "the document is gone" 404 GET "/org/documents/$id" -H "$AUTH"

# A team: invite a colleague, who accepts and works as a member; transfer
# ownership to them: they are made an owner, and the first owner steps
# down to admin (and then leaves). Without SMTP_URL (as with make run) the
# invitation's answer carries its token; with it, the token goes by mail.
colleague="colleague+${run}@quickstart.example.com"
call "invite a colleague as a member" 201 POST /org/invitations -H "$AUTH" -H "$JSON" \
	-d "{\"email\":\"$colleague\",\"role\":\"member\"}"
invitation="$(field token)"
call "the colleague accepts" 200 POST /invitations/accept -H "$JSON" \
	-d "{\"token\":\"$invitation\",\"password\":\"colleague-pass-1\"}"
colleague_auth="Authorization: Bearer $(field access_token)"
call "the colleague stores a document" 201 POST /org/documents -H "$colleague_auth" -H "$JSON" -d '{"by":"colleague"}'
call "a member cannot rename the organization" 403 PUT /org/update -H "$colleague_auth" -H "$JSON" \
	-d "{\"organization_name\":\"$name\",\"new_organization_name\":\"Not Mine ${run}\"}"
call "who am I" 200 GET /me -H "$colleague_auth"
colleague_id="$(field id)"
set_role "make the colleague an owner too" "$colleague_id" owner "$colleague_auth"
log_in "the colleague logs in again" 200 "$colleague" "colleague-pass-1"
colleague_auth="Authorization: Bearer $(field access_token)"

call "who am I (the first owner)" 200 GET /me -H "$AUTH"
owner_id="$(field id)"
set_role "the first owner steps down to admin" "$owner_id" admin "$AUTH"
log_in "the former owner logs in again" 200 "$email" "$password"
take_token
call "list the members" 200 GET /org/members -H "$colleague_auth"
owners="$(grep -o '"role":"owner"' "$body" | grep -c .)" || true
[ "$owners" = 1 ] || die "list the members: $owners owners, want the colleague alone: $(cat "$body")"
expect_in "\"id\":\"$colleague_id\",\"email\":\"$colleague\",\"role\":\"owner\"" "the colleague is the sole owner"
expect_in "\"id\":\"$owner_id\",\"email\":\"$email\",\"role\":\"admin\"" "the former owner is an admin"
printf '    the sole owner: %s\n' "$colleague"
call "the former owner cannot rename it now" 403 PUT /org/update -H "$AUTH" -H "$JSON" \
	-d "{\"organization_name\":\"$name\",\"new_organization_name\":\"$new_name\"}"
call "the former owner leaves" 204 DELETE "/org/members/$owner_id" -H "$AUTH"
log_in "their account went with it" 401 "$email" "$password"

# The colleague, the owner now, carries on.
AUTH="$colleague_auth"
call "rename the organization" 200 PUT /org/update -H "$AUTH" -H "$JSON" \
	-d "{\"organization_name\":\"$name\",\"new_organization_name\":\"$new_name\"}"
take_token

call "the earlier token still works" 200 GET /org/documents -H "$old_auth"
call "so does the fresh one" 200 GET /org/documents -H "$AUTH"

call "change the owner's password" 200 PUT /org/update -H "$AUTH" -H "$JSON" \
	-d "{\"organization_name\":\"$new_name\",\"password\":\"another-pass-9\"}"
take_token
call "the earlier token no longer works" 401 GET /org/documents -H "$old_auth"
call "the fresh token does" 200 GET /org/documents -H "$AUTH"

call "delete the organization" 200 DELETE /org/delete -H "$AUTH" -H "$JSON" \
	-d "{\"organization_name\":\"$new_name\"}"
call "the organization is gone" 404 GET /org/get -G --data-urlencode "organization_name=$new_name"

printf '\nquickstart: every step answered as expected\n'
