package auth

import (
	"crypto/rand"
	"encoding/base32"
)

// NewEmailToken returns a token to mail, in the reference PDS's XXXXX-XXXXX shape: 50
// random bits, enough for a single-use token that expires in minutes behind a rate
// limit, and easy to type from a mail.
func NewEmailToken() (string, error) {
	raw := make([]byte, 7)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)[:10]
	return s[:5] + "-" + s[5:], nil
}
