package pds

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/hearth-social/hearth/pds/plc"
	"github.com/hearth-social/hearth/pds/store"
)

// The PLC methods of account migration (atproto.com/guides/account-migration). Hearth
// holds each account's PLC rotation key, so moving an account away needs Hearth to
// sign the operation that points the DID elsewhere: requestPlcOperationSignature mails
// a token, signPlcOperation signs with it. Moving an account in, the new PDS says what
// the DID document must hold (getRecommendedDidCredentials) and forwards the
// operation the old PDS signed (submitPlcOperation).

// handleRequestPlcOperationSignature mails the account a token for signPlcOperation.
func (s *Server) handleRequestPlcOperationSignature(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if err := requireFullAccess(c); err != nil {
		return err
	}
	if err := s.mailToken(r.Context(), c.DID, mail.PurposePLCOperation); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// handleSignPlcOperation signs, with Hearth's rotation key, an update of the caller's
// DID document over the current head of its PLC log, with the fields the caller gives
// replaced (the others kept). The token from requestPlcOperationSignature is consumed.
// The operation is returned, not submitted: the new PDS submits it.
func (s *Server) handleSignPlcOperation(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c := callerFrom(ctx)
	if err := requireFullAccess(c); err != nil {
		return err
	}
	var in struct {
		Token               string                 `json:"token"`
		RotationKeys        []string               `json:"rotationKeys"`
		AlsoKnownAs         []string               `json:"alsoKnownAs"`
		VerificationMethods map[string]string      `json:"verificationMethods"`
		Services            map[string]plc.Service `json:"services"`
	}
	if err := xrpc.DecodeJSON(w, r, 64<<10, &in); err != nil {
		return err
	}
	if in.Token == "" {
		return xrpc.InvalidRequest("email confirmation token required to sign PLC operations")
	}
	did := syntax.DID(c.DID)
	last, err := s.plc.LastOp(ctx, did)
	if err != nil {
		return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "reading the PLC log failed: %v", err)
	}
	op, err := plc.NewUpdate(last, "", func(op *plc.Op) {
		if in.RotationKeys != nil {
			op.RotationKeys = in.RotationKeys
		}
		if in.AlsoKnownAs != nil {
			op.AlsoKnownAs = in.AlsoKnownAs
		}
		if in.VerificationMethods != nil {
			op.VerificationMethods = in.VerificationMethods
		}
		if in.Services != nil {
			op.Services = in.Services
		}
	}, s.rotation)
	if err != nil {
		return xrpc.InvalidRequest("cannot sign that operation: %v", err)
	}
	// The token is consumed only once the operation could be signed. An operation that
	// points the DID at another PDS marks the account, so that once the directory says so
	// this PDS stops presenting it as active (checkMovedAway).
	away := op.Services[plc.ServiceAtprotoPDS].Endpoint != s.cfg.PublicURL
	if err := s.store.Write(ctx, func(tx *store.Tx) error {
		if err := takeToken(tx, c.DID, mail.PurposePLCOperation, in.Token); err != nil {
			return err
		}
		if away {
			return tx.MarkSignedAway(c.DID, tx.Now())
		}
		return nil
	}); err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"operation": op})
	return nil
}

// recommendedCredentials is what the caller's DID document must hold for this PDS to
// host it: Hearth's rotation key first, the account's Hearth signing key, its handle
// and this PDS's endpoint.
func (s *Server) recommendedCredentials(ctx context.Context, did string) (*plc.Op, error) {
	acct, err := s.store.AccountByDID(ctx, did)
	if err != nil {
		return nil, err
	}
	key, err := s.accountSigningKey(ctx, did)
	if err != nil {
		return nil, err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return nil, err
	}
	rot, err := s.rotation.PublicKey()
	if err != nil {
		return nil, err
	}
	aka := []string{}
	if h, err := syntax.ParseHandle(acct.Handle); err == nil {
		aka = append(aka, "at://"+h.String())
	}
	return &plc.Op{
		RotationKeys:        []string{rot.DIDKey()},
		AlsoKnownAs:         aka,
		VerificationMethods: map[string]string{plc.VerificationMethodAtproto: pub.DIDKey()},
		Services: map[string]plc.Service{
			plc.ServiceAtprotoPDS: {Type: plc.ServiceTypePDS, Endpoint: s.cfg.PublicURL},
		},
	}, nil
}

func (s *Server) handleGetRecommendedDidCredentials(w http.ResponseWriter, r *http.Request) error {
	rec, err := s.recommendedCredentials(r.Context(), callerFrom(r.Context()).DID)
	if err != nil {
		return err
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{
		"rotationKeys": rec.RotationKeys, "alsoKnownAs": rec.AlsoKnownAs,
		"verificationMethods": rec.VerificationMethods, "services": rec.Services,
	})
	return nil
}

// handleSubmitPlcOperation forwards an operation for the caller's DID to the PLC
// directory after checking it keeps this PDS in charge: Hearth's rotation key, the
// account's Hearth signing key and Hearth's endpoint. The directory checks the
// signature and the chain.
func (s *Server) handleSubmitPlcOperation(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c := callerFrom(ctx)
	if err := requireFullAccess(c); err != nil {
		return err
	}
	var in struct {
		Operation json.RawMessage `json:"operation"`
	}
	if err := xrpc.DecodeJSON(w, r, 64<<10, &in); err != nil {
		return err
	}
	var op plc.Op
	if err := json.Unmarshal(in.Operation, &op); err != nil {
		return xrpc.InvalidRequest("operation is not a PLC operation: %v", err)
	}
	if err := plc.ValidateOp(&op); err != nil {
		return xrpc.InvalidRequest("invalid PLC operation: %v", err)
	}
	want, err := s.recommendedCredentials(ctx, c.DID)
	if err != nil {
		return err
	}
	switch {
	case op.IsTombstone():
		return xrpc.InvalidRequest("refusing to submit a tombstone for an account hosted here")
	case !slices.Contains(op.RotationKeys, want.RotationKeys[0]):
		return xrpc.InvalidRequest("the operation must keep this PDS's rotation key %s", want.RotationKeys[0])
	case op.VerificationMethods[plc.VerificationMethodAtproto] != want.VerificationMethods[plc.VerificationMethodAtproto]:
		return xrpc.InvalidRequest("the operation must name the account's signing key on this PDS, %s", want.VerificationMethods[plc.VerificationMethodAtproto])
	case op.Services[plc.ServiceAtprotoPDS] != want.Services[plc.ServiceAtprotoPDS]:
		return xrpc.InvalidRequest("the operation must name this PDS, %s, as the atproto_pds service", s.cfg.PublicURL)
	}
	if err := s.plc.Submit(ctx, syntax.DID(c.DID), &op); err != nil {
		var se *plc.StatusError
		if errors.As(err, &se) && se.StatusCode < 500 {
			return xrpc.InvalidRequest("the PLC directory refused the operation: %v", err)
		}
		return xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "submitting to the PLC directory failed: %v", err)
	}
	s.accounts.forget(c.DID)
	w.WriteHeader(http.StatusOK)
	return nil
}

// signedAwayWindow is how long after signing a move-away operation this PDS keeps
// checking whether the DID document was updated.
const signedAwayWindow = 24 * time.Hour

// checkMovedAway deactivates accounts whose DID document, after this PDS signed an
// operation moving it, names another PDS: the account then lives elsewhere, so it must
// not be presented (getRepoStatus, listRepos, the firehose) as active here, even if the
// user never deactivated it. Marks older than signedAwayWindow are dropped.
func (s *Server) checkMovedAway(ctx context.Context) (int, error) {
	marks, err := s.store.SignedAway(ctx, 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for did, at := range marks {
		here, err := s.didPointsHere(ctx, did)
		switch {
		case err != nil:
			s.log.Warn("checking whether an account moved away", "did", did, "err", err)
			continue
		case !here:
			s.log.Info("account moved to another PDS: deactivating it here", "did", did)
			if err := s.setAccountStatus(ctx, did, store.StatusDeactivated); err != nil {
				return n, err
			}
			n++
		case time.Since(at) < signedAwayWindow:
			continue
		}
		if err := s.store.Write(ctx, func(tx *store.Tx) error { return tx.MarkSignedAway(did, time.Time{}) }); err != nil {
			return n, err
		}
	}
	return n, nil
}
