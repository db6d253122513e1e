package lexicons

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Hearth's own lexicons load with the rest and resolve by NSID.
func TestHearthLexicons(t *testing.T) {
	cat, err := NewCatalog().Load()
	require.NoError(t, err)
	for _, ref := range []string{"social.hearth.feed.explainPost", "social.hearth.feed.explainPost#evidence", "social.hearth.admin.getModerationLog#entry", "social.hearth.admin.getRelayStatus#relayStatus", "social.hearth.admin.requestCrawl#crawlResult"} {
		_, err := cat.Resolve(ref)
		require.NoError(t, err, ref)
	}
}
