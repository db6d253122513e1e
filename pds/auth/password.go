package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/scrypt"
)

// ErrBadPasswordHash: a stored hash could not be parsed.
var ErrBadPasswordHash = errors.New("malformed password hash")

// Hasher hashes and checks passwords with scrypt. Each hash takes ~16 MiB and tens of
// milliseconds, so at most Parallel run at once (memory stays bounded under a burst of
// logins).
type Hasher struct {
	N, R, P int
	sem     chan struct{}
	// verified counts Verify calls that ran scrypt (tests check that a login costs one).
	verified atomic.Int64
}

// Verifications is how many scrypt verifications have run.
func (h *Hasher) Verifications() int64 { return h.verified.Load() }

// NewHasher returns a hasher with the given scrypt cost (N=0 means 2^14) and parallelism.
func NewHasher(n, parallel int) *Hasher {
	if n == 0 {
		n = 1 << 14
	}
	if parallel <= 0 {
		parallel = 2
	}
	return &Hasher{N: n, R: 8, P: 1, sem: make(chan struct{}, parallel)}
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Hash returns an encoded scrypt hash: scrypt$N$r$p$salt$key (base64, no padding).
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer func() { <-h.sem }()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := scrypt.Key([]byte(password), salt, h.N, h.R, h.P, 32)
	if err != nil {
		return "", fmt.Errorf("scrypt: %w", err)
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("scrypt$%d$%d$%d$%s$%s", h.N, h.R, h.P, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify reports whether password matches the encoded hash.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "scrypt" {
		return false, ErrBadPasswordHash
	}
	var nrp [3]int
	for i := range nrp {
		v, err := strconv.Atoi(parts[1+i])
		if err != nil || v <= 0 {
			return false, ErrBadPasswordHash
		}
		nrp[i] = v
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, ErrBadPasswordHash
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer func() { <-h.sem }()
	h.verified.Add(1)
	got, err := scrypt.Key([]byte(password), salt, nrp[0], nrp[1], nrp[2], len(want))
	if err != nil {
		return false, fmt.Errorf("scrypt: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
