package health

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"

	"g6/conf"
)

// maxHTTPHead bounds the status line and headers an http check reads.
const maxHTTPHead = 16 << 10

// checkHTTP sends one request (Connection: close) and takes the answer if
// its status is one of expect_status and, with expect_body, the first
// conf.MaxCheckBody bytes of its body hold that text. net/http parses the
// answer (chunked bodies included); what it may read is bounded here.
func checkHTTP(c io.ReadWriter, hc *conf.HealthCheck, addr string) error {
	host := hc.Host
	if host == "" {
		host = addr
	}
	if _, err := fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: g6-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		hc.Method, hc.Path, host); err != nil {
		return fmt.Errorf("send: %w", unwrapOp(err))
	}
	br := bufio.NewReader(io.LimitReader(c, maxHTTPHead+conf.MaxCheckBody))
	resp, err := http.ReadResponse(br, &http.Request{Method: hc.Method})
	if err != nil {
		return fmt.Errorf("not an HTTP answer: %v", unwrapOp(err))
	}
	defer resp.Body.Close()
	if !hc.ExpectStatus.Has(resp.StatusCode) {
		return fmt.Errorf("status %d, expected %s", resp.StatusCode, statusText(hc.ExpectStatus))
	}
	if hc.ExpectBody == "" {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, conf.MaxCheckBody))
	if !strings.Contains(string(body), hc.ExpectBody) {
		if err != nil {
			return fmt.Errorf("body does not hold %s (%v)", quote(hc.ExpectBody), unwrapOp(err))
		}
		return fmt.Errorf("body does not hold %s", quote(hc.ExpectBody))
	}
	return nil
}

// statusText writes ranges as the config does: 200-399, 404.
func statusText(r conf.StatusRanges) string {
	var parts []string
	for _, x := range r {
		if x[0] == x[1] {
			parts = append(parts, fmt.Sprint(x[0]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", x[0], x[1]))
		}
	}
	return strings.Join(parts, ", ")
}
