package health

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// scramClient is the client side of SCRAM-SHA-256 (RFC 5802, 7677) as
// PostgreSQL speaks it: no channel binding, the user name taken from the
// startup message (so n= is empty), the password not SASLprep'd (ASCII
// passwords are what it changes nothing for).
type scramClient struct {
	password    string
	clientNonce string
	firstBare   string
	authMessage string
	salted      []byte
}

func newSCRAM(password string) *scramClient {
	b := make([]byte, 18)
	rand.Read(b)
	return &scramClient{password: password, clientNonce: base64.StdEncoding.EncodeToString(b)}
}

// first is client-first-message.
func (s *scramClient) first() string {
	s.firstBare = "n=,r=" + s.clientNonce
	return "n,," + s.firstBare
}

// final answers server-first-message with client-final-message.
func (s *scramClient) final(serverFirst string) (string, error) {
	attrs := scramAttrs(serverFirst)
	nonce, salt64, iter := attrs["r"], attrs["s"], attrs["i"]
	if !strings.HasPrefix(nonce, s.clientNonce) || len(nonce) == len(s.clientNonce) {
		return "", errors.New("SCRAM: the server's nonce does not extend ours")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return "", fmt.Errorf("SCRAM: salt: %w", err)
	}
	n, err := strconv.Atoi(iter)
	if err != nil || n < 1 || n > 1_000_000 {
		return "", fmt.Errorf("SCRAM: iteration count %s", quote(iter))
	}
	if s.salted, err = pbkdf2.Key(sha256.New, s.password, salt, n, sha256.Size); err != nil {
		return "", fmt.Errorf("SCRAM: %w", err)
	}
	withoutProof := "c=biws,r=" + nonce // biws = base64("n,,")
	s.authMessage = s.firstBare + "," + serverFirst + "," + withoutProof
	clientKey := mac(s.salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	sig := mac(stored[:], s.authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// verify checks server-final-message: the server knew the password too.
func (s *scramClient) verify(serverFinal string) error {
	attrs := scramAttrs(serverFinal)
	if e := attrs["e"]; e != "" {
		return fmt.Errorf("SCRAM: %s", e)
	}
	got, err := base64.StdEncoding.DecodeString(attrs["v"])
	want := mac(mac(s.salted, "Server Key"), s.authMessage)
	if err != nil || s.salted == nil || !hmac.Equal(got, want) {
		return errors.New("SCRAM: the server's signature does not match")
	}
	return nil
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// scramAttrs splits "a=x,b=y".
func scramAttrs(msg string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(msg, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && len(k) == 1 {
			out[k] = v
		}
	}
	return out
}
