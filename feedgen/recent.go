package feedgen

import (
	"context"
	"errors"

	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/internal/xrpc"
)

// ExplainedPost is an indexed post with its explainPost verdict.
type ExplainedPost struct {
	Post    *index.PostInfo
	Verdict *ExplainOutput
}

// RecentExplained returns the newest visible indexed posts (at most limit, seq < before;
// index.NoCursor for the first page), each with the verdict explainPost gives, for the
// operator dashboard's feed explorer. A post hidden between the two reads is skipped.
func (s *Service) RecentExplained(ctx context.Context, before int64, limit int) ([]ExplainedPost, error) {
	posts, err := s.idx.RecentPosts(ctx, before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]ExplainedPost, 0, len(posts))
	for _, p := range posts {
		v, info, err := s.Explain(ctx, p.URI)
		var xe *xrpc.Error
		if errors.As(err, &xe) && xe.Name == "PostNotFound" {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ExplainedPost{Post: info, Verdict: v})
	}
	return out, nil
}
