package health

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"g6/conf"
)

// maxRedisReply bounds one reply a redis check reads (INFO replication
// is a few hundred bytes; a replica set's list grows with its replicas).
const maxRedisReply = 64 << 10

// checkRedis: AUTH if a password is set, PING answered +PONG, and with
// role = "master" INFO replication says role:master.
func checkRedis(c io.ReadWriter, hc *conf.HealthCheck) error {
	br := bufio.NewReader(c)
	if hc.Password != "" {
		args := []string{"AUTH", hc.Password}
		if hc.User != "" {
			args = []string{"AUTH", hc.User, hc.Password}
		}
		if r, err := redisCall(c, br, args...); err != nil {
			return err
		} else if r != "+OK" {
			return fmt.Errorf("AUTH: %s", quote(r))
		}
	}
	r, err := redisCall(c, br, "PING")
	if err != nil {
		return err
	}
	if r != "+PONG" {
		return fmt.Errorf("expected +PONG, got %s", quote(r))
	}
	if hc.Role != conf.RoleMaster {
		return nil
	}
	r, err = redisCall(c, br, "INFO", "replication")
	if err != nil {
		return err
	}
	role, ok := infoField(r, "role")
	switch {
	case !ok:
		return fmt.Errorf("INFO replication: no role in %s", quote(r))
	case role != "master":
		return fmt.Errorf("role:%s, expected role:master", role)
	}
	return nil
}

// redisCall sends a command as a RESP array and reads one reply.
func redisCall(w io.Writer, br *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return "", fmt.Errorf("send: %w", unwrapOp(err))
	}
	r, err := readRESP(br)
	if err != nil {
		return "", fmt.Errorf("%s: %w", args[0], err)
	}
	return r, nil
}

var errNotRESP = errors.New("not a Redis reply")

// readRESP reads one reply: a simple string or error as it came
// ("+PONG", "-LOADING …"), an integer as ":N", a bulk string as its
// contents; arrays are not expected by the commands a check sends.
func readRESP(br *bufio.Reader) (string, error) {
	line, err := readLine(br, maxRedisReply)
	if err != nil {
		return "", err
	}
	if line == "" {
		return "", errNotRESP
	}
	switch line[0] {
	case '+', '-', ':':
		return line, nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		switch {
		case err != nil || n < -1:
			return "", errNotRESP
		case n == -1:
			return "", fmt.Errorf("nil reply")
		case n > maxRedisReply:
			return "", errTooLong
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", fmt.Errorf("bulk reply: %v", unwrapOp(err))
		}
		if string(buf[n:]) != "\r\n" {
			return "", errNotRESP
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("%w: %s", errNotRESP, quote(line))
}

// infoField finds "key:value" among INFO's lines.
func infoField(info, key string) (string, bool) {
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":"); ok && k == key {
			return v, true
		}
	}
	return "", false
}
