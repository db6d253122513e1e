package testnet

import (
	"bytes"
	"fmt"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	"github.com/hearth-social/hearth/feedgen/labeler"
	"github.com/hearth-social/hearth/internal/firehose"
)

// LabelsFrame is one decoded subscribeLabels frame: Labels, Info or Error is set.
type LabelsFrame struct {
	Labels *comatproto.LabelSubscribeLabels_Labels
	Info   *comatproto.LabelSubscribeLabels_Info
	Error  *events.ErrorFrame
	// Type is the header's t ("" for error frames); unknown types have no body set.
	Type string
}

// DecodeLabelsFrame decodes a subscribeLabels frame, as a labeler client would.
func DecodeLabelsFrame(data []byte) (*LabelsFrame, error) {
	r := bytes.NewReader(data)
	var hdr events.EventHeader
	if err := hdr.UnmarshalCBOR(r); err != nil {
		return nil, fmt.Errorf("frame header: %w", err)
	}
	f := &LabelsFrame{Type: hdr.MsgType}
	switch {
	case hdr.Op == events.EvtKindErrorFrame:
		f.Error = new(events.ErrorFrame)
		if err := f.Error.UnmarshalCBOR(r); err != nil {
			return nil, fmt.Errorf("error frame: %w", err)
		}
	case hdr.Op != events.EvtKindMessage:
		return nil, fmt.Errorf("frame header: unknown op %d", hdr.Op)
	case hdr.MsgType == labeler.TypeLabels:
		f.Labels = new(comatproto.LabelSubscribeLabels_Labels)
		if err := f.Labels.UnmarshalCBOR(r); err != nil {
			return nil, fmt.Errorf("#labels frame: %w", err)
		}
	case hdr.MsgType == firehose.TypeInfo:
		f.Info = new(comatproto.LabelSubscribeLabels_Info)
		if err := f.Info.UnmarshalCBOR(r); err != nil {
			return nil, fmt.Errorf("#info frame: %w", err)
		}
	}
	return f, nil
}
