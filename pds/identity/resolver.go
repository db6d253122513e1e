package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Resolver is an indigo identity.Directory backed by a PLC Client, so indigo code
// (e.g. repo.VerifyCommitSignature) can resolve did:plc identities against it.
// It does no caching.
type Resolver struct {
	PLC *Client
	// ResolveHandle maps a handle to a DID (DNS / well-known, or a local table).
	// When nil, LookupHandle fails with identity.ErrHandleNotFound and LookupDID
	// leaves handles unverified (handle.invalid).
	ResolveHandle func(ctx context.Context, handle syntax.Handle) (syntax.DID, error)
}

var _ identity.Directory = (*Resolver)(nil)

// LookupDID resolves did through the PLC directory. The declared handle is
// reported only if ResolveHandle maps it back to did; otherwise the identity's
// Handle is handle.invalid. Only did:plc is supported.
func (r *Resolver) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	if did.Method() != "plc" {
		return nil, fmt.Errorf("%w: unsupported DID method %q", identity.ErrDIDResolutionFailed, did.Method())
	}
	doc, err := r.PLC.Resolve(ctx, did)
	if err != nil {
		if errors.Is(err, identity.ErrDIDNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", identity.ErrDIDResolutionFailed, err)
	}
	ident := identity.ParseIdentity(doc)
	ident.Handle = syntax.HandleInvalid
	declared, err := ident.DeclaredHandle()
	if err != nil || r.ResolveHandle == nil {
		return &ident, nil
	}
	resolved, err := r.ResolveHandle(ctx, declared)
	if err == nil && resolved == did {
		ident.Handle = declared
	}
	return &ident, nil
}

// LookupHandle resolves handle with ResolveHandle, then its DID, and checks that
// the DID document declares the same handle.
func (r *Resolver) LookupHandle(ctx context.Context, handle syntax.Handle) (*identity.Identity, error) {
	handle = handle.Normalize()
	if r.ResolveHandle == nil {
		return nil, fmt.Errorf("%w: %s (no handle resolver configured)", identity.ErrHandleNotFound, handle)
	}
	did, err := r.ResolveHandle(ctx, handle)
	if err != nil {
		return nil, fmt.Errorf("lookup handle %s: %w", handle, err)
	}
	ident, err := r.LookupDID(ctx, did)
	if err != nil {
		return nil, err
	}
	declared, err := ident.DeclaredHandle()
	if err != nil {
		return nil, fmt.Errorf("lookup handle %s: %w", handle, err)
	}
	if declared != handle {
		return nil, fmt.Errorf("%w: %s != %s", identity.ErrHandleMismatch, declared, handle)
	}
	ident.Handle = declared
	return ident, nil
}

// Lookup dispatches to LookupHandle or LookupDID.
func (r *Resolver) Lookup(ctx context.Context, atid syntax.AtIdentifier) (*identity.Identity, error) {
	if h, err := atid.AsHandle(); err == nil {
		return r.LookupHandle(ctx, h)
	}
	if did, err := atid.AsDID(); err == nil {
		return r.LookupDID(ctx, did)
	}
	return nil, fmt.Errorf("at-identifier %q is neither a handle nor a DID", atid.String())
}

// Purge is a no-op: Resolver does not cache.
func (r *Resolver) Purge(ctx context.Context, atid syntax.AtIdentifier) error { return nil }
