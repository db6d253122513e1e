package feedgen

import (
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/feedgen/ingest"
	"github.com/hearth-social/hearth/feedgen/labeler"
)

// Accessors for the end-to-end tests in package feedgen_test.

// Labeler is the service's labeler.
func (s *Service) Labeler() *labeler.Labeler { return s.lab }

// BlobsFetched is the number of blobs fetched (not served from the cache) since start.
func (s *Service) BlobsFetched() int64 { return s.worker.fetched.Load() }

// Index is the service's index.
func (s *Service) Index() *index.Index { return s.idx }

// Ingester is the service's firehose client.
func (s *Service) Ingester() *ingest.Ingester { return s.ingest }
