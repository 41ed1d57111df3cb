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
`, console, adminAddr, front, back1, back2)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath("chromium"), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()
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
		}
	}
	if err := chromedp.Listen(ctx, listen); err != nil {
		t.Fatalf("chromium (Debian's chromium package, headless): %v", err)
	}

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
	rows, pts, shot, err := browse(ctx, console, back2)
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
	// A disable click turns the server disabled on the page and in show servers.
	state, err := clickDisable(ctx, back2)
	if err != nil || state != "disabled" {
		t.Errorf("after the disable click the page says %q (%v)", state, err)
	}
	if out := adminSend(t, adminAddr, "show servers\n"); !strings.Contains(out, back2) || !regexp.MustCompile(regexp.QuoteMeta(back2)+`\s+disabled`).MatchString(out) {
		t.Errorf("show servers after the click:\n%s", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the page logged:\n%s", strings.Join(problems, "\n"))
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

// browse opens the console, waits for the row of server, counts rule web's
// rows, waits 5 s of polling, reads the chart's points and takes a
// screenshot.
func browse(ctx context.Context, console, server string) (rows int, pts float64, shot []byte, err error) {
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
