package labeler

import (
	"context"
	"fmt"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/stream"
)

// TypeLabels is the frame type of com.atproto.label.subscribeLabels' label messages.
// Its #info frames and error names are the ones every event stream shares
// (firehose.TypeInfo, firehose.ErrFutureCursor, firehose.ErrConsumerTooSlow).
const TypeLabels = "#labels"

// EncodeLabelsFrame encodes a #labels message frame: the DAG-CBOR header {op: 1,
// t: "#labels"} followed by the body {seq, labels}.
func EncodeLabelsFrame(seq int64, labels []*comatproto.LabelDefs_Label) ([]byte, error) {
	return firehose.EncodeMessage(TypeLabels, &comatproto.LabelSubscribeLabels_Labels{Seq: seq, Labels: labels})
}

// labelFeed is the label log as the stream server's Source: com.atproto.label.
// subscribeLabels. Without a cursor a subscriber gets labels from now on; with one, every
// label after it (the log is never pruned, cursor 0 replays all) and then live labels,
// each exactly once. One frame carries one label; its seq is the label's sequence number.
// Subscribers page the log themselves: labels are few and small, so there is no shared
// in-memory buffer as the firehose has.
type labelFeed struct{ l *Labeler }

// Prepare has nothing to start: every subscriber reads the log directly.
func (labelFeed) Prepare(context.Context) error { return nil }

func (f labelFeed) LastSeq(ctx context.Context) (int64, error) { return f.l.LastSeq(ctx) }

// OldestSeq is 1: the log is never pruned, so no cursor is outdated.
func (labelFeed) OldestSeq(context.Context) (int64, bool, error) { return 1, true, nil }

// Read encodes up to limit labels after `after`. A short page means the subscriber has
// caught up, so it also carries the wake channel, taken before the read so that a commit
// after it is not missed.
func (f labelFeed) Read(ctx context.Context, after int64, dst []stream.Event, limit int) (stream.Page, error) {
	l := f.l
	wake := l.Notify()
	last := l.last.Load()
	batch, err := l.labelsAfter(ctx, after, limit)
	if err != nil {
		return stream.Page{}, fmt.Errorf("reading labels after %d: %w", after, err)
	}
	for i := range batch {
		lex := batch[i].ToLexicon()
		frame, err := EncodeLabelsFrame(batch[i].Seq, []*comatproto.LabelDefs_Label{&lex})
		if err != nil {
			return stream.Page{}, fmt.Errorf("encoding label %d: %w", batch[i].Seq, err)
		}
		dst = append(dst, stream.Event{Seq: batch[i].Seq, Frame: frame})
	}
	p := stream.Page{Events: dst, Pos: after, Last: last}
	if len(batch) > 0 {
		p.Pos = batch[len(batch)-1].Seq
		p.Last = max(last, p.Pos)
	}
	if len(batch) < limit {
		p.Wake = wake
	}
	return p, nil
}
