package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// appPasswordEncoding is lowercase RFC 4648 base32 (a-z, 2-7): every character carries
// exactly 5 random bits.
var appPasswordEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewAppPassword returns a fresh app password in the xxxx-xxxx-xxxx-xxxx shape apps
// expect: 16 characters from 10 random bytes, 80 bits of entropy with no skew.
func NewAppPassword() (string, error) {
	raw := make([]byte, 10)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	s := appPasswordEncoding.EncodeToString(raw) // 16 characters
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16], nil
}

// normalizeAppPassword lowercases and trims what a user typed.
func normalizeAppPassword(pw string) string {
	return strings.ToLower(strings.TrimSpace(pw))
}

// LooksLikeAppPassword reports whether pw has the app-password shape, so a login only
// looks for an app password when it could be one.
func LooksLikeAppPassword(pw string) bool {
	pw = normalizeAppPassword(pw)
	if len(pw) != 19 {
		return false
	}
	for i := 0; i < len(pw); i++ {
		c := pw[i]
		if i%5 == 4 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// AppPasswordLookup is the keyed hash an app password is stored and found by. The
// passwords are 80 random bits, so a keyed SHA-256 is as strong as a slow hash here, and
// a login costs one indexed lookup instead of one scrypt per stored app password.
func AppPasswordLookup(key []byte, pw string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(normalizeAppPassword(pw)))
	return m.Sum(nil)
}
