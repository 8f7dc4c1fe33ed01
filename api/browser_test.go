//go:build browser

package api_test

// Swagger UI in a real browser: Debian's Chromium, driven headless with
// chromedp, opens /docs on a test server, signs up and logs in through
// "Try it out", authorizes with the token and calls authenticated
// operations, as a person would. It saves a screenshot to
// artifacts/swagger-ui.png at the end, and when it fails.
//
// Run it with:
//
//	go test -tags browser -run TestSwaggerUI ./api/
//
// It needs Chromium at /usr/bin/chromium (apt-get install -y chromium).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

func TestSwaggerUI(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("this test drives Chromium, and %s is missing: run `apt-get install -y chromium` (%v)", chromiumPath, err)
	}
	s := loadSpec(t)
	e := newEnv(t)

	shot := filepath.Join(repoRoot(), "artifacts", "swagger-ui.png")
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(shot)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	ui := &swaggerUI{t: t, ctx: bctx, shot: shot}
	if err := chromedp.Listen(bctx, ui.onEvent); err != nil {
		t.Fatalf("starting Chromium (%s): %v", chromiumPath, err)
	}
	defer ui.reportConsole()

	// Open /docs: it redirects to /docs/index.html, and Swagger UI renders.
	ui.do("open /docs",
		chromedp.Navigate(e.srv.URL+"/docs"),
		chromedp.WaitVisible(chromedp.CSS(".swagger-ui .opblock")),
	)
	if loc := ui.location(); !strings.HasSuffix(loc, "/docs/index.html") {
		ui.fatalf("/docs did not redirect to /docs/index.html: at %s", loc)
	}
	title := ui.text(".swagger-ui .info .title")
	if !strings.Contains(title, "orgsvc") {
		ui.fatalf("title: got %q, want orgsvc", title)
	}

	// Every operation of docs/swagger.json is listed.
	var listed []string
	ui.eval("list the operations", `Array.from(document.querySelectorAll('.swagger-ui .opblock')).map(b =>
		b.querySelector('.opblock-summary-method').textContent.trim().toUpperCase() + ' ' +
		(b.querySelector('.opblock-summary-path').getAttribute('data-path') || b.querySelector('.opblock-summary-path').textContent.trim()))`, &listed)
	var want []string
	for _, o := range s.operations() {
		want = append(want, o.method+" "+o.path)
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		ui.fatalf("operations listed by Swagger UI:\n  %s\nwant (docs/swagger.json):\n  %s", strings.Join(listed, "\n  "), strings.Join(want, "\n  "))
	}

	// Sign up and log in through "Try it out".
	name := fmt.Sprintf("Browser Org %d", time.Now().UnixNano())
	email := fmt.Sprintf("admin+%d@browser.example.com", time.Now().UnixNano())
	signup, _ := json.Marshal(map[string]string{"organization_name": name, "email": email, "password": "browser-pass-1"})
	created := ui.tryItOut("POST", "/org/create", string(signup), 201)
	if created["organization_name"] != name {
		ui.fatalf("POST /org/create rendered %v, want organization_name %q", created, name)
	}
	login, _ := json.Marshal(map[string]string{"email": email, "password": "browser-pass-1"})
	tokenBody := ui.tryItOut("POST", "/admin/login", string(login), 200)
	token, _ := tokenBody["access_token"].(string)
	if token == "" {
		ui.fatalf("POST /admin/login rendered no access_token: %v", tokenBody)
	}

	// Authorize with the token.
	ui.do("open Authorize",
		chromedp.Click(chromedp.CSS(".swagger-ui .auth-wrapper .btn.authorize")),
		chromedp.WaitVisible(chromedp.CSS(".swagger-ui .modal-ux .auth-container input")),
	)
	ui.do("type the token",
		chromedp.Focus(chromedp.CSS(".swagger-ui .modal-ux .auth-container input")),
		insertText("Bearer "+token),
		chromedp.Click(chromedp.CSS(".swagger-ui .modal-ux .auth-btn-wrapper .btn.authorize")),
		chromedp.WaitVisible(chromedp.CSS(".swagger-ui .modal-ux .auth-btn-wrapper .btn.btn-done")),
	)
	ui.do("close Authorize",
		chromedp.Click(chromedp.CSS(".swagger-ui .modal-ux .auth-btn-wrapper .btn.btn-done")),
		chromedp.WaitNotPresent(chromedp.CSS(".swagger-ui .modal-ux")),
		chromedp.WaitVisible(chromedp.CSS(".swagger-ui .auth-wrapper .btn.authorize.locked")),
	)

	// Authenticated operations: store a document, then list it.
	doc := ui.tryItOut("POST", "/org/documents", `{"kind":"invoice","total":120,"lines":[[1,2],[3]]}`, 201)
	id, _ := doc["id"].(string)
	if data, _ := doc["data"].(map[string]any); id == "" || data["kind"] != "invoice" {
		ui.fatalf("POST /org/documents rendered %v", doc)
	}
	if curl := ui.text("#" + ui.opID("POST", "/org/documents") + " .curl-command"); !strings.Contains(curl, "Authorization: Bearer "+token) {
		ui.fatalf("the curl command of POST /org/documents carries no Bearer token: %s", curl)
	}
	page := ui.tryItOut("GET", "/org/documents", "", 200)
	items, _ := page["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["id"] != id {
		ui.fatalf("GET /org/documents rendered %v, want the document %s", page, id)
	}

	ui.screenshot()
	t.Logf("screenshot: %s", shot)
}

// swaggerUI drives one Swagger UI page.
type swaggerUI struct {
	t    *testing.T
	ctx  context.Context
	shot string

	mu      sync.Mutex
	console []string // exceptions and console errors of the page
}

func (u *swaggerUI) onEvent(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		line = "exception: " + ev.ExceptionDetails.Text
		if ex := ev.ExceptionDetails.Exception; ex != nil && ex.Description != "" {
			line += " " + ex.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeWarning {
			return
		}
		var args []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		line = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
	default:
		return
	}
	u.mu.Lock()
	u.console = append(u.console, line)
	u.mu.Unlock()
}

func (u *swaggerUI) reportConsole() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range u.console {
		u.t.Logf("browser %s", l)
	}
}

// do runs the steps; on failure it saves a screenshot and fails the test.
func (u *swaggerUI) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := chromedp.Do(ctx, actions...); err != nil {
		u.fatalf("%s: %v", step, err)
	}
	u.t.Logf("%s (%v)", step, time.Since(start).Round(time.Millisecond))
}

func (u *swaggerUI) eval(step, js string, out any) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js))
	if err == nil {
		err = json.Unmarshal(v, out)
	}
	if err != nil {
		u.fatalf("%s: %v", step, err)
	}
}

func (u *swaggerUI) text(css string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(css)))
	if err != nil {
		u.fatalf("read %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

func (u *swaggerUI) location() string {
	u.t.Helper()
	loc, err := chromedp.Run(u.ctx, chromedp.Location())
	if err != nil {
		u.fatalf("location: %v", err)
	}
	return loc
}

func (u *swaggerUI) fatalf(format string, args ...any) {
	u.t.Helper()
	u.screenshot()
	u.t.Fatalf(format+" (screenshot: %s)", append(args, u.shot)...)
}

// screenshot saves the whole page; a failure to do so is only logged.
func (u *swaggerUI) screenshot() {
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(u.shot, png, 0o644)
	}
	if err != nil {
		u.t.Logf("screenshot: %v", err)
	}
}

// opID is the element id of the operation's block.
func (u *swaggerUI) opID(method, path string) string {
	u.t.Helper()
	var id string
	u.eval("find "+method+" "+path, fmt.Sprintf(`(() => {
		const b = Array.from(document.querySelectorAll('.swagger-ui .opblock')).find(b =>
			b.querySelector('.opblock-summary-method').textContent.trim().toUpperCase() === %q &&
			(b.querySelector('.opblock-summary-path').getAttribute('data-path') || '') === %q);
		return b ? b.id : '';
	})()`, method, path), &id)
	if id == "" {
		u.fatalf("Swagger UI lists no %s %s", method, path)
	}
	return id
}

// insertText enters text into the focused field at once, as a paste or an
// input method does: the browser fires the same input events as for typing,
// but Swagger UI renders once instead of once a key (typing a body key by
// key takes about 100 ms a character on 2 cores).
func insertText(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text})
		return err
	})
}

// tryItOut expands the operation, clicks "Try it out", types body into the
// body field (when not empty), clicks Execute, and checks the status that
// Swagger UI renders. It returns the rendered response body, decoded.
func (u *swaggerUI) tryItOut(method, path, body string, status int) map[string]any {
	u.t.Helper()
	op := method + " " + path
	sel := "#" + u.opID(method, path)
	u.do("expand "+op,
		chromedp.ScrollIntoView(chromedp.CSS(sel+" .opblock-summary")),
		chromedp.Click(chromedp.CSS(sel+" .opblock-summary-control")),
		chromedp.WaitVisible(chromedp.CSS(sel+" .try-out__btn")),
	)
	u.do("Try it out on "+op,
		chromedp.Click(chromedp.CSS(sel+" .try-out__btn")),
		chromedp.WaitVisible(chromedp.CSS(sel+" .btn.execute")),
	)
	if body != "" {
		area := chromedp.CSS(sel + " textarea.body-param__text")
		u.do("type the body of "+op,
			chromedp.WaitVisible(area),
			chromedp.Focus(area),
			// Select the example Swagger UI put there, so that typing
			// replaces it.
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).select()`, string(area))),
			insertText(body),
		)
		var typed string
		u.eval("read the body of "+op, fmt.Sprintf(`document.querySelector(%q).value`, string(area)), &typed)
		if typed != body {
			u.fatalf("the body field of %s holds %q, want %q", op, typed, body)
		}
	}
	statusCell := sel + " .live-responses-table .response .response-col_status"
	u.do("Execute "+op,
		chromedp.Click(chromedp.CSS(sel+" .btn.execute")),
		chromedp.WaitVisible(chromedp.CSS(statusCell)),
	)
	got := u.text(statusCell)
	bodyText := u.text(sel + " .live-responses-table .response .response-col_description .highlight-code pre")
	if got != strconv.Itoa(status) {
		u.fatalf("%s rendered status %q, want %d; body %s", op, got, status, bodyText)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(bodyText), &out); err != nil {
		u.fatalf("%s rendered a body that is not a JSON object: %v: %q", op, err, bodyText)
	}
	return out
}
