package pds

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
)

// Methods the PDS serves for the Bluesky app by calling another service the way the
// reference PDS does, rather than through the generic proxy.

var (
	nsidGetFeed         = syntax.NSID("app.bsky.feed.getFeed")
	nsidGetFeedSkeleton = syntax.NSID("app.bsky.feed.getFeedSkeleton")
)

// handleGetFeed serves app.bsky.feed.getFeed: the AppView hydrates a feed generator's
// skeleton, and passes the caller's token on to the generator, so the token must be
// for the generator (aud its DID, lxm getFeedSkeleton), not for the AppView. The
// generator's DID comes from its app.bsky.feed.generator record: read here when the
// publisher is local, else from the AppView's getFeedGenerator.
func (s *Server) handleGetFeed(w http.ResponseWriter, r *http.Request) error {
	up := s.appView()
	if up == nil {
		return xrpc.Errorf(http.StatusNotImplemented, "MethodNotImplemented", "no AppView is configured to serve %s", nsidGetFeed)
	}
	raw := r.URL.Query().Get("feed")
	uri, err := syntax.ParseATURI(raw)
	if err != nil || uri.Collection() != "app.bsky.feed.generator" || uri.RecordKey() == "" {
		return xrpc.InvalidRequest("feed must be the AT-URI of an app.bsky.feed.generator record: %q", raw)
	}
	gen, err := s.feedGeneratorDID(r.Context(), uri, up)
	if err != nil {
		return err
	}
	return s.forward(w, r, nsidGetFeed, *up, callerFrom(r.Context()), gen, nsidGetFeedSkeleton, nil)
}

// feedGeneratorDID is the service DID a feed generator record names.
func (s *Server) feedGeneratorDID(ctx context.Context, uri syntax.ATURI, up *upstream) (string, error) {
	if did, err := uri.Authority().AsDID(); err == nil {
		_, value, err := s.store.Record(ctx, did.String(), uri.Collection().String(), uri.RecordKey().String())
		switch {
		case err == nil:
			rec, err := atdata.UnmarshalCBOR(value)
			if err != nil {
				return "", err
			}
			if d, ok := rec["did"].(string); ok {
				if _, err := syntax.ParseDID(d); err == nil {
					return d, nil
				}
			}
			return "", xrpc.InvalidRequest("feed generator record %s names no valid did", uri)
		case !errors.Is(err, store.ErrNotFound):
			return "", err
		}
	}
	client, err := xrpc.NewClient(up.endpoint, xrpc.WithHTTPClient(up.client))
	if err != nil {
		return "", err
	}
	var out struct {
		View struct {
			DID string `json:"did"`
		} `json:"view"`
	}
	if err := client.Query(ctx, "app.bsky.feed.getFeedGenerator", "", url.Values{"feed": {uri.String()}}, &out); err != nil {
		var re *xrpc.ResponseError
		if errors.As(err, &re) && re.Status < 500 {
			return "", xrpc.Errorf(http.StatusBadRequest, "UnknownFeed", "unknown feed generator %s", uri)
		}
		return "", xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "looking up the feed generator failed: %v", err)
	}
	if _, err := syntax.ParseDID(out.View.DID); err != nil {
		return "", xrpc.Errorf(http.StatusBadGateway, "UpstreamFailure", "the AppView named no valid generator DID for %s", uri)
	}
	return out.View.DID, nil
}

// handlePushRegistration serves app.bsky.notification.registerPush and unregisterPush:
// the call goes to the notification service the body names (its #bsky_notif endpoint),
// with a token for that service.
func (s *Server) handlePushRegistration(nsid syntax.NSID) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := readBody(w, r, 64<<10)
		if err != nil {
			return err
		}
		var in struct {
			ServiceDID string `json:"serviceDid"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return xrpc.InvalidRequest("invalid JSON body: %v", err)
		}
		did, err := syntax.ParseDID(in.ServiceDID)
		if err != nil {
			return xrpc.InvalidRequest("serviceDid must be a DID: %q", in.ServiceDID)
		}
		endpoint, err := s.proxy.resolveService(r.Context(), did, "bsky_notif")
		if err != nil {
			return err
		}
		up := upstream{aud: did.String(), endpoint: endpoint, client: s.proxy.guarded}
		return s.forward(w, r, nsid, up, callerFrom(r.Context()), did.String(), nsid, body)
	}
}

// readBody reads a small request body whole.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var raw json.RawMessage
	if err := xrpc.DecodeJSON(w, r, limit, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// forwardForeignRepo answers getRecord/listRecords for a repo this PDS does not host
// from the AppView, as the reference PDS does. It reports false when there is no
// AppView to ask (the caller then answers RepoNotFound).
func (s *Server) forwardForeignRepo(w http.ResponseWriter, r *http.Request, nsid syntax.NSID) (bool, error) {
	up := s.appView()
	if up == nil {
		return false, nil
	}
	return true, s.forward(w, r, nsid, *up, nil, "", nsid, nil)
}

// isRepoNotFound reports a RepoNotFound answer (no account here by that identifier).
func isRepoNotFound(err error) bool {
	var xe *xrpc.Error
	return errors.As(err, &xe) && xe.Name == "RepoNotFound"
}
