package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"g6/internal/testenv"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestConsolePage: Debian's chromium, headless, driven by chromedp, loads
// the console with no console errors or exceptions, shows the configured
// servers, and draws chart points after a few seconds of traffic. The
// screenshot is saved under G6_ARTIFACTS (default: the test's temp dir).
func TestConsolePage(t *testing.T) {
	back1, back2, front, console, adminAddr := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back1, back2)
	udpBack, udpFront := testenv.Addr(t), testenv.Addr(t)
	testenv.UDPBackend(t, udpBack)
	cfg := fmt.Sprintf(`
[global]
console = %q

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q, %q]
%s`, console, adminAddr, front, back1, back2, udpRule("dns", udpFront, "", udpBack))
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	if _, err := testenv.UDPAsk(udpFront, []byte("hello"), 20); err != nil {
		t.Fatalf("through the UDP rule: %v", err)
	}
	ctx, problems := openBrowser(t)

	// Traffic for the chart while the page polls.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				if c, _, err := testenv.Hold(front, ""); err == nil {
					c.Close()
				}
			}
		}
	}()
	rows, pts, rate, shot, err := browse(ctx, console, back2)
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if rows != 2 {
		t.Errorf("the page lists %d servers of rule web, want 2", rows)
	}
	if pts < 4 {
		t.Errorf("the chart has %v points after 5 s of traffic", pts)
	}
	if rate <= 0 {
		t.Errorf("%s shows %v conn/s during about 25 conn/s of traffic to it", back2, rate)
	}
	// A disable click turns the server disabled on the page and in show servers.
	state, err := clickDisable(ctx, back2)
	if err != nil || state != "disabled" {
		t.Errorf("after the disable click the page says %q (%v)", state, err)
	}
	if out := adminSend(t, adminAddr, "show servers\n"); !strings.Contains(out, back2) || !regexp.MustCompile(regexp.QuoteMeta(back2)+`\s+disabled`).MatchString(out) {
		t.Errorf("show servers after the click:\n%s", out)
	}
	// A server added with the rule's form shows on the page and in show servers.
	back3 := testenv.Addr(t)
	testenv.Backend(t, "greet", back3)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#rule-web form.add input`), back3+" weight 2"),
		chromedp.Click(chromedp.CSS(`#rule-web form.add button`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-server="`+back3+`"]`))); err != nil {
		t.Errorf("adding %s with the form: %v", back3, err)
	}
	if out := adminSend(t, adminAddr, "show servers\n"); !strings.Contains(out, back3) {
		t.Errorf("show servers after the add:\n%s", out)
	}
	// The UDP rule says so, with its datagrams.
	summary, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#rule-dns summary`)))
	if err != nil || !strings.Contains(summary, "udp "+udpFront) || !strings.Contains(summary, "1/1 datagrams, 0 dropped") {
		t.Errorf("the UDP rule's line on the page: %q (%v)", summary, err)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the page logged:\n%s", strings.Join(p, "\n"))
	}
	dir := os.Getenv("G6_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "console.png")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
}

// TestConsoleManyServers: with 500 servers in a rule the page stays
// usable: the rule starts folded, shows 100 rows until asked for all, and
// a refresh with all 500 drawn takes well under its 2 s period.
func TestConsoleManyServers(t *testing.T) {
	front, console := testenv.Addr(t), testenv.Addr(t)
	var servers []string
	for i := range 500 {
		servers = append(servers, fmt.Sprintf("%q", fmt.Sprintf("127.0.%d.%d:9", 1+i/250, 1+i%250)))
	}
	cfg := fmt.Sprintf("[global]\nconsole = %q\n\n[[rule]]\nid = \"big\"\nalgorithm = \"RR\"\nclients = [\"*:*\"]\nlisten = [%q]\nservers = [%s]\n",
		console, front, strings.Join(servers, ", "))
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	ctx, problems := openBrowser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+console+"/"),
		chromedp.WaitReady(chromedp.CSS(`#rule-big button.more`))); err != nil {
		t.Fatalf("browser: %v", err)
	}
	open, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("rule-big").open`))
	if err != nil || open {
		t.Errorf("a rule with 500 servers starts open (%v)", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#rule-big tr[data-server]").length`))
	if err != nil || rows != 100 {
		t.Errorf("the page draws %d rows before show all, want 100 (%v)", rows, err)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("rule-big").open = true`),
		chromedp.Click(chromedp.CSS(`#rule-big button.more`)),
		chromedp.Sleep(4*time.Second)); err != nil {
		t.Fatal(err)
	}
	rows, err = chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#rule-big tr[data-server]").length`))
	if err != nil || rows != 500 {
		t.Errorf("after show all the page draws %d rows, want 500 (%v)", rows, err)
	}
	ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.g6.refreshMillis()`))
	if err != nil || ms <= 0 || ms > 1000 {
		t.Errorf("a refresh with 500 servers took %v ms (%v)", ms, err)
	}
	t.Logf("a refresh with 500 servers drawn: %.0f ms", ms)
	if p := problems(); len(p) > 0 {
		t.Errorf("the page logged:\n%s", strings.Join(p, "\n"))
	}
}

// openBrowser starts Debian's chromium headless for the test and returns
// its context and what the page logged: console errors and warnings,
// exceptions, and the browser's own messages about the page (the Log
// domain: CSP violations, failed loads), any level but verbose.
func openBrowser(t *testing.T) (context.Context, func() []string) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath("chromium"), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelT)
	var mu sync.Mutex
	var problems []string
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, fmt.Sprintf("exception: %s at %d:%d", e.ExceptionDetails.Text, e.ExceptionDetails.LineNumber, e.ExceptionDetails.ColumnNumber))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value))
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level != cdplog.EntryLevelVerbose {
				problems = append(problems, fmt.Sprintf("%s %s: %s (%s)", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL))
			}
		}
	}
	if err := chromedp.Listen(ctx, listen); err != nil {
		t.Fatalf("chromium (Debian's chromium package, headless): %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("chromium: enable its log: %v", err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// browse opens the console, waits for the row of server, counts rule web's
// rows, waits 5 s of polling, reads the chart's points and server's
// conn/s and takes a screenshot.
func browse(ctx context.Context, console, server string) (rows int, pts, rate float64, shot []byte, err error) {
	if err = chromedp.Do(ctx, chromedp.Navigate("http://"+console+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-server="`+server+`"]`))); err != nil {
		return
	}
	if rows, err = chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#rule-web tr[data-server]").length`)); err != nil {
		return
	}
	if err = chromedp.Do(ctx, chromedp.Sleep(5*time.Second)); err != nil {
		return
	}
	if pts, err = chromedp.Run(ctx, chromedp.Evaluate[float64](`window.g6.points()`)); err != nil {
		return
	}
	if rate, err = chromedp.Run(ctx, chromedp.Evaluate[float64](`parseFloat(document.querySelector('tr[data-server="`+server+`"] td:nth-child(5)').textContent)`)); err != nil {
		return
	}
	shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100) /* 100: PNG */)
	return
}

// clickDisable clicks the disable button of server's row and returns the
// state the page shows for it once it changed (or after 10 s).
func clickDisable(ctx context.Context, server string) (string, error) {
	row := `tr[data-server="` + server + `"]`
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+` button[data-action="disable"]`))); err != nil {
		return "", err
	}
	var state string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('`+row+` td:nth-child(2)').textContent`))
		if err != nil {
			return "", err
		}
		if state = s; state == "disabled" {
			break
		}
	}
	return state, nil
}
