package oauth

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DPoP (RFC 9449) with server-issued nonces: every proof must carry a nonce this server
// handed out in a DPoP-Nonce header in the last few minutes, must not repeat a jti, and
// must name the request's method and URL.

const (
	nonceRotation = time.Minute
	proofMaxAge   = 5 * time.Minute
	proofMaxSkew  = 30 * time.Second
	// maxReplayEntries bounds the jti cache; past it, proofs are refused until entries
	// expire (a flood of fresh proofs cannot grow memory without bound).
	maxReplayEntries = 200_000
)

// dpopAlgs are the proof algorithms verified, and the only ones advertised.
var dpopAlgs = []jose.SignatureAlgorithm{jose.ES256}

// nonces makes and checks DPoP nonces: an HMAC of the rotation counter, so any of the
// previous, current and next values is accepted and nothing is stored.
type nonces struct {
	key []byte
	now func() time.Time
}

func (n *nonces) at(counter int64) string {
	m := hmac.New(sha256.New, n.key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(counter))
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

func (n *nonces) counter() int64 { return n.now().UnixNano() / int64(nonceRotation) }

// Current is the nonce to send in DPoP-Nonce.
func (n *nonces) Current() string { return n.at(n.counter()) }

func (n *nonces) valid(v string) bool {
	c := n.counter()
	for _, k := range []int64{c - 1, c, c + 1} {
		if subtle.ConstantTimeCompare([]byte(n.at(k)), []byte(v)) == 1 {
			return true
		}
	}
	return false
}

// replay remembers the jti of every proof accepted in the last proofMaxAge.
type replay struct {
	mu   sync.Mutex
	seen map[string]time.Time
	now  func() time.Time
	next time.Time // next sweep
}

// add records key and reports whether it was new.
func (r *replay) add(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.seen == nil {
		r.seen = make(map[string]time.Time)
	}
	if now.After(r.next) || len(r.seen) >= maxReplayEntries {
		for k, exp := range r.seen {
			if now.After(exp) {
				delete(r.seen, k)
			}
		}
		r.next = now.Add(time.Minute)
	}
	if exp, ok := r.seen[key]; ok && now.Before(exp) {
		return false
	}
	if len(r.seen) >= maxReplayEntries {
		return false
	}
	r.seen[key] = now.Add(proofMaxAge + proofMaxSkew)
	return true
}

type dpopClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	Nonce string `json:"nonce"`
	ATH   string `json:"ath"`
}

// Proof is a verified DPoP proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof key, base64url.
	JKT string
}

// checkProof verifies the request's DPoP header for htu (the URL the request was made
// to, without query) and, when accessToken is set, its ath. errUseNonce (with the nonce
// header set by the caller) when the nonce is missing or stale.
func (p *Provider) checkProof(r *http.Request, htu, accessToken string) (*Proof, *Error) {
	vals := r.Header.Values("DPoP")
	if len(vals) == 0 {
		return nil, invalidDPoP("DPoP proof required")
	}
	if len(vals) > 1 {
		return nil, invalidDPoP("more than one DPoP header")
	}
	jws, err := jose.ParseSignedCompact(vals[0], dpopAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, invalidDPoP("DPoP proof is not an ES256 JWS")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, invalidDPoP("DPoP proof typ must be dpop+jwt")
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		return nil, invalidDPoP("DPoP proof must embed its public jwk")
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return nil, invalidDPoP("DPoP proof signature does not verify")
	}
	var c dpopClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalidDPoP("DPoP proof claims are not JSON")
	}
	if c.JTI == "" || len(c.JTI) > 256 {
		return nil, invalidDPoP("DPoP proof needs a jti")
	}
	if c.HTM != r.Method {
		return nil, invalidDPoP("DPoP proof htm does not match the request method")
	}
	if !sameHTU(c.HTU, htu) {
		return nil, invalidDPoP("DPoP proof htu does not match the request URL")
	}
	now := p.now()
	iat := time.Unix(c.IAT, 0)
	if c.IAT == 0 || iat.After(now.Add(proofMaxSkew)) || iat.Before(now.Add(-proofMaxAge)) {
		return nil, invalidDPoP("DPoP proof iat is too old or in the future")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return nil, invalidDPoP("DPoP proof ath does not match the access token")
		}
	}
	if c.Nonce == "" || !p.nonces.valid(c.Nonce) {
		return nil, errUseNonce
	}
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, invalidDPoP("DPoP proof key has no thumbprint")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	if !p.replay.add(jkt + " " + c.JTI) {
		return nil, invalidDPoP("DPoP proof jti was already used")
	}
	return &Proof{JKT: jkt}, nil
}

// sameHTU compares a proof's htu with the expected URL, ignoring query and fragment
// (RFC 9449 section 4.3) and the case of scheme and host.
func sameHTU(claim, want string) bool {
	u, err := url.Parse(claim)
	if err != nil || u.Host == "" {
		return false
	}
	w, err := url.Parse(want)
	if err != nil {
		return false
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	wpath := w.EscapedPath()
	if wpath == "" {
		wpath = "/"
	}
	return strings.EqualFold(u.Scheme, w.Scheme) && strings.EqualFold(u.Host, w.Host) && path == wpath
}
