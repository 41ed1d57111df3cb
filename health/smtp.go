package health

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// SMTP replies a check reads: lines of at most maxSMTPLine bytes (RFC
// 5321 allows 512), at most maxSMTPLines of them per reply.
const (
	maxSMTPLine  = 1024
	maxSMTPLines = 100
)

// checkSMTP: the banner is 220, EHLO is answered 250; then QUIT.
func checkSMTP(c io.ReadWriter) error {
	br := bufio.NewReader(c)
	if code, text, err := smtpReply(br); err != nil {
		return fmt.Errorf("banner: %w", err)
	} else if code != 220 {
		return fmt.Errorf("banner %d %s, expected 220", code, quote(text))
	}
	if _, err := io.WriteString(c, "EHLO g6-health-check\r\n"); err != nil {
		return fmt.Errorf("send: %w", unwrapOp(err))
	}
	if code, text, err := smtpReply(br); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	} else if code != 250 {
		return fmt.Errorf("EHLO answered %d %s, expected 250", code, quote(text))
	}
	io.WriteString(c, "QUIT\r\n")
	return nil
}

// smtpReply reads one reply, all its lines ("250-…" then "250 …"), and
// returns its code and first line's text.
func smtpReply(br *bufio.Reader) (int, string, error) {
	first := ""
	for i := 0; i < maxSMTPLines; i++ {
		line, err := readLine(br, maxSMTPLine)
		if err != nil {
			return 0, "", err
		}
		if len(line) < 3 || len(line) > 3 && line[3] != ' ' && line[3] != '-' {
			return 0, "", fmt.Errorf("not an SMTP reply: %s", quote(line))
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 {
			return 0, "", fmt.Errorf("not an SMTP reply: %s", quote(line))
		}
		if i == 0 && len(line) > 4 {
			first = line[4:]
		}
		if len(line) == 3 || line[3] == ' ' {
			return code, first, nil
		}
	}
	return 0, "", fmt.Errorf("a reply of more than %d lines", maxSMTPLines)
}
