// Package oauth is Hearth's OAuth authorization server and resource-server check for the
// atproto OAuth profile (atproto.com/specs/oauth): server metadata, pushed authorization
// requests, the authorization-code (PKCE S256) and refresh-token grants with rotation,
// revocation, DPoP-bound access tokens with server nonces, client metadata documents
// (fetched through the SSRF-guarded client) and loopback development clients, and
// private_key_jwt client authentication. The pages people see (sign-in, consent) are
// pds/web's; it calls Pending, Approve and Deny here. JOSE work (JWS, JWK thumbprints,
// key sets) is go-jose's.
package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/hearth-social/hearth/internal/netguard"
	"github.com/hearth-social/hearth/pds/store"
)

// Lifetimes, within the profile's advice: access tokens well under 30 minutes (they are
// revocable: each names its session, checked on use), public-client sessions 2 weeks,
// confidential-client sessions 180 days.
const (
	AccessTokenTTL         = 15 * time.Minute
	PublicSessionTTL       = 14 * 24 * time.Hour
	ConfidentialSessionTTL = 180 * 24 * time.Hour
	requestTTL             = 5 * time.Minute
	codeTTL                = time.Minute
)

// Config is what the provider needs.
type Config struct {
	// Issuer is the PDS's public URL with no trailing slash (also the protected
	// resource's identifier, as the DID document's #atproto_pds endpoint).
	Issuer string
	// Audience is the aud of access tokens: the PDS's service DID.
	Audience string
	Store    *store.Store
	// HTTPClient fetches client metadata and jwks_uri documents; nil is the SSRF-guarded
	// netguard client (tests inject one that trusts their TLS server).
	HTTPClient *http.Client
	// SigningKey signs access tokens (ES256, P-256), kept in the store by the caller.
	SigningKey *ecdsa.PrivateKey
	// NonceKey keys DPoP nonces (32 bytes).
	NonceKey []byte
	// Lexicons resolves the permission sets include: scopes name (permset.go); nil
	// refuses every include: (invalid_scope).
	Lexicons LexiconResolver
	Log      *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Provider is the authorization server.
type Provider struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	clients *clients
	nonces  *nonces
	replay  *replay
	sets    *permSets
	key     *ecdsa.PrivateKey
	kid     string
	now     func() time.Time
}

// New builds a provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Issuer == "" || strings.HasSuffix(cfg.Issuer, "/") {
		return nil, fmt.Errorf("oauth: issuer %q must be set and have no trailing slash", cfg.Issuer)
	}
	if cfg.SigningKey == nil || cfg.SigningKey.Curve != elliptic.P256() {
		return nil, fmt.Errorf("oauth: a P-256 signing key is required")
	}
	if len(cfg.NonceKey) < 16 {
		return nil, fmt.Errorf("oauth: a nonce key of at least 16 bytes is required")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = netguard.NewClient(netguard.Options{Timeout: 10 * time.Second, DialTimeout: 5 * time.Second, ResponseHeaderTimeout: 5 * time.Second})
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	der, err := x509.MarshalPKIXPublicKey(&cfg.SigningKey.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &Provider{
		cfg: cfg, log: log, store: cfg.Store, now: now,
		clients: &clients{http: hc, now: now},
		nonces:  &nonces{key: cfg.NonceKey, now: now},
		replay:  &replay{now: now},
		sets:    newPermSets(cfg.Lexicons, now),
		key:     cfg.SigningKey,
		kid:     base64.RawURLEncoding.EncodeToString(sum[:12]),
	}, nil
}

// GenerateSigningKey makes a new P-256 key for Config.SigningKey, as PKCS#8 DER.
func GenerateSigningKey() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return x509.MarshalPKCS8PrivateKey(k)
}

// ParseSigningKey reads a key made by GenerateSigningKey.
func ParseSigningKey(der []byte) (*ecdsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("oauth: signing key is not ECDSA")
	}
	return ek, nil
}

// Issuer is the authorization server's issuer identifier.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Nonce is the current DPoP nonce.
func (p *Provider) Nonce() string { return p.nonces.Current() }

// Register adds the provider's endpoints to mux (the pages of /oauth/authorize are
// pds/web's).
func (p *Provider) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/oauth-protected-resource", p.handleProtectedResource)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", p.handleServerMetadata)
	mux.HandleFunc("GET /oauth/jwks", p.handleJWKS)
	mux.HandleFunc("POST /oauth/par", p.handlePAR)
	mux.HandleFunc("POST /oauth/token", p.handleToken)
	mux.HandleFunc("POST /oauth/revoke", p.handleRevoke)
}

func (p *Provider) endpoint(path string) string { return p.cfg.Issuer + path }

func (p *Provider) handleProtectedResource(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"resource":                 p.cfg.Issuer,
		"authorization_servers":    []string{p.cfg.Issuer},
		"scopes_supported":         []string{},
		"bearer_methods_supported": []string{"header"},
		"resource_documentation":   "https://atproto.com",
	})
}

// ScopesSupported are the scopes advertised (granular permissions cannot be listed).
var ScopesSupported = []string{"atproto", "transition:generic", "transition:chat.bsky", "transition:email"}

func (p *Provider) handleServerMetadata(w http.ResponseWriter, r *http.Request) {
	algs := []string{string(jose.ES256)}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                           p.cfg.Issuer,
		"authorization_endpoint":                           p.endpoint("/oauth/authorize"),
		"token_endpoint":                                   p.endpoint("/oauth/token"),
		"pushed_authorization_request_endpoint":            p.endpoint("/oauth/par"),
		"revocation_endpoint":                              p.endpoint("/oauth/revoke"),
		"jwks_uri":                                         p.endpoint("/oauth/jwks"),
		"require_pushed_authorization_requests":            true,
		"client_id_metadata_document_supported":            true,
		"authorization_response_iss_parameter_supported":   true,
		"request_parameter_supported":                      false,
		"request_uri_parameter_supported":                  true,
		"scopes_supported":                                 ScopesSupported,
		"subject_types_supported":                          []string{"public"},
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query", "fragment"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{"none", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": algs,
		"dpop_signing_alg_values_supported":                algs,
		"prompt_values_supported":                          []string{"none", "login", "consent", "select_account"},
		"protected_resources":                              []string{p.cfg.Issuer},
	})
}

func (p *Provider) handleJWKS(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{p.publicJWK()}})
}

func (p *Provider) publicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &p.key.PublicKey, KeyID: p.kid, Algorithm: string(jose.ES256), Use: "sig"}
}

// setNonce sends the current DPoP nonce; every AS and DPoP-authenticated answer has it.
func (p *Provider) setNonce(w http.ResponseWriter) {
	w.Header().Set("DPoP-Nonce", p.nonces.Current())
}

func randomToken(prefix string, n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func hashSecret(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}
