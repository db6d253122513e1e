// Package auth holds the PDS's credentials: password hashing (scrypt, memory-hard),
// session JWTs (short-lived HS256 access tokens, rotated and revocable refresh tokens
// whose ids are stored by the caller), and admin Basic auth.
//
// Access tokens are checked without a database read (signature, type, expiry); refresh
// tokens are single-use: the caller deletes the stored id when it issues the next pair.
package auth
