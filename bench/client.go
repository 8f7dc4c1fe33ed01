package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// apiClient calls the service's HTTP API for seeding and for the rename
// scenarios.
type apiClient struct {
	base string
	hc   *http.Client
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: base, hc: &http.Client{
		Timeout:   2 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}}
}

// statusError is an answer with an unexpected status.
type statusError struct {
	method, path string
	status       int
	body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, e.body)
}

// do sends body as JSON and decodes the answer into out when the status is
// want.
func (c *apiClient) do(ctx context.Context, method, path, token string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		if len(raw) > 300 {
			raw = raw[:300]
		}
		return &statusError{method: method, path: path, status: res.StatusCode, body: string(raw)}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// account is an organization and its admin's credentials.
type account struct {
	Name, Email, Password string
	Token                 string
}

func newAccount(name string) *account {
	return &account{Name: name, Email: "admin@" + name + ".example.com", Password: "bench-password-1"}
}

// signUpBody is the POST /org/create body of a.
func (a *account) signUpBody() map[string]string {
	return map[string]string{"organization_name": a.Name, "email": a.Email, "password": a.Password}
}

func (a *account) loginBody() map[string]string {
	return map[string]string{"email": a.Email, "password": a.Password}
}

// transient reports whether err is worth retrying: 429 or 5xx from an
// overloaded service, or a connection it dropped.
func transient(err error) bool {
	if se, ok := err.(*statusError); ok {
		return se.status == http.StatusTooManyRequests || se.status >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue) && !ue.Timeout() && !errors.Is(err, context.Canceled)
}

// retry calls fn up to three times while it fails transiently, waiting a
// little longer each time; fn learns which attempt it is.
func retry(ctx context.Context, fn func(attempt int) error) error {
	var err error
	for attempt := range 3 {
		if err = fn(attempt); !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * time.Second):
		}
	}
	return err
}

// signUp creates a's organization, retrying when the service is
// overloaded; a retry that finds the name taken means the earlier attempt
// went through after all.
func (c *apiClient) signUp(ctx context.Context, a *account) error {
	return retry(ctx, func(attempt int) error {
		err := c.do(ctx, http.MethodPost, "/org/create", "", a.signUpBody(), http.StatusCreated, nil)
		if se, ok := err.(*statusError); ok && attempt > 0 && se.status == http.StatusBadRequest {
			return nil
		}
		return err
	})
}

// ensure signs a up, or, when its name is taken (a service that was
// measured before), checks that its credentials still log in. It leaves a
// logged in.
func (c *apiClient) ensure(ctx context.Context, a *account) error {
	err := c.signUp(ctx, a)
	if se, ok := err.(*statusError); ok && se.status == http.StatusBadRequest {
		err = nil // already there: the login below tells whether it is ours
	}
	if err != nil {
		return err
	}
	return retry(ctx, func(int) error { return c.login(ctx, a) })
}

func (c *apiClient) login(ctx context.Context, a *account) error {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.do(ctx, http.MethodPost, "/admin/login", "", a.loginBody(), http.StatusOK, &out); err != nil {
		return err
	}
	a.Token = out.AccessToken
	return nil
}

// invite has a's organization invite email with role, and returns the
// invitation's token (the service sends no mail here).
func (c *apiClient) invite(ctx context.Context, a *account, email, role string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	err := c.do(ctx, http.MethodPost, "/org/invitations", a.Token, map[string]string{"email": email, "role": role}, http.StatusCreated, &out)
	return out.Token, err
}

// accept accepts an invitation for a, with a's password.
func (c *apiClient) accept(ctx context.Context, a *account, token string) error {
	return retry(ctx, func(int) error {
		return c.do(ctx, http.MethodPost, "/invitations/accept", "", map[string]string{"token": token, "password": a.Password}, http.StatusOK, nil)
	})
}

// createDocument stores body for a and returns the new document's id,
// retrying when the service is overloaded (an attempt that went through
// after all leaves one more document, which does no harm).
func (c *apiClient) createDocument(ctx context.Context, a *account, body any) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := retry(ctx, func(int) error {
		return c.do(ctx, http.MethodPost, "/org/documents", a.Token, body, http.StatusCreated, &out)
	})
	return out.ID, err
}

// rename renames a's organization to name and keeps the fresh token.
func (c *apiClient) rename(ctx context.Context, a *account, name string) error {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	body := map[string]string{"organization_name": a.Name, "new_organization_name": name}
	if err := c.do(ctx, http.MethodPut, "/org/update", a.Token, body, http.StatusOK, &out); err != nil {
		return err
	}
	a.Name, a.Token = name, out.AccessToken
	return nil
}

// remove logs a in and deletes its organization, retrying when the service
// is overloaded. It reports whether there was one to delete: a failed login
// or an unknown name means it is gone (or never was).
func (c *apiClient) remove(ctx context.Context, a *account) (bool, error) {
	var deleted bool
	err := retry(ctx, func(int) error {
		err := c.login(ctx, a)
		if se, ok := err.(*statusError); ok && se.status == http.StatusUnauthorized {
			return nil
		}
		if err != nil {
			return err
		}
		err = c.do(ctx, http.MethodDelete, "/org/delete", a.Token, map[string]string{"organization_name": a.Name}, http.StatusOK, nil)
		if se, ok := err.(*statusError); ok && se.status == http.StatusNotFound {
			return nil
		}
		deleted = err == nil
		return err
	})
	return deleted, err
}

// orgInfo is the service's answer to GET /org/get.
type orgInfo struct {
	ID             string `json:"_id"`
	CollectionName string `json:"collection_name"`
	AdminID        string `json:"admin_id"`
}

// organization looks the organization named name up (GET /org/get).
func (c *apiClient) organization(ctx context.Context, name string) (*orgInfo, error) {
	var out orgInfo
	err := retry(ctx, func(int) error {
		return c.do(ctx, http.MethodGet, orgGetPath(name), "", nil, http.StatusOK, &out)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// orgGetPath is the GET /org/get path for name.
func orgGetPath(name string) string {
	return "/org/get?organization_name=" + url.QueryEscape(name)
}

// member is one entry of GET /org/members.
type member struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Role  string `json:"role"`
}

// members lists the first page of a's organization's members.
func (c *apiClient) members(ctx context.Context, a *account) ([]member, error) {
	var out struct {
		Items []member `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, "/org/members?limit=500", a.Token, nil, http.StatusOK, &out)
	return out.Items, err
}

// changeRole gives the member id of a's organization role (PATCH
// /org/members/{account_id}), once: no retry, for timing.
func (c *apiClient) changeRole(ctx context.Context, a *account, id, role string) error {
	return c.do(ctx, http.MethodPatch, "/org/members/"+url.PathEscape(id), a.Token, map[string]string{"role": role}, http.StatusOK, nil)
}

// signUpOnce creates a's organization, once: no retry, for timing.
func (c *apiClient) signUpOnce(ctx context.Context, a *account) error {
	return c.do(ctx, http.MethodPost, "/org/create", "", a.signUpBody(), http.StatusCreated, nil)
}

// auditPage is the answer to GET /org/audit.
type auditPage struct {
	Items []struct {
		Seq int64 `json:"seq"`
	} `json:"items"`
	Next *string `json:"next"`
}

// auditPage reads the newest page of limit events of a's organization's
// audit log.
func (c *apiClient) auditPage(ctx context.Context, a *account, limit int) (*auditPage, error) {
	var out auditPage
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/org/audit?limit=%d", limit), a.Token, nil, http.StatusOK, &out)
	return &out, err
}
