package repo

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/ipfs/go-cid"
)

// CAR v1 writing by hand: the format is a varint-prefixed DAG-CBOR header
// {version: 1, roots: [cid]} followed by varint-prefixed (cid bytes ++ block bytes)
// sections. go-car's writer would pull a blockstore abstraction into a hot path that
// only needs to frame bytes we already hold.

// CARHeader returns the encoded header (with its length prefix). A repo CAR has its
// commit as the single root; an undefined root gives an empty roots list (getBlocks).
func CARHeader(root cid.Cid) ([]byte, error) {
	roots := []any{}
	if root.Defined() {
		roots = append(roots, atdata.CIDLink(root))
	}
	hdr, err := atdata.MarshalCBOR(map[string]any{
		"version": int64(1),
		"roots":   roots,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding CAR header: %w", err)
	}
	out := binary.AppendUvarint(nil, uint64(len(hdr)))
	return append(out, hdr...), nil
}

// AppendCARBlock appends one framed block section to buf.
func AppendCARBlock(buf []byte, c cid.Cid, data []byte) []byte {
	cb := c.Bytes()
	buf = binary.AppendUvarint(buf, uint64(len(cb)+len(data)))
	buf = append(buf, cb...)
	return append(buf, data...)
}

// CARWriter streams a CAR v1 file.
type CARWriter struct {
	w       *bufio.Writer
	scratch []byte
}

// NewCARWriter writes the header for root and returns a writer for the blocks.
func NewCARWriter(w io.Writer, root cid.Cid) (*CARWriter, error) {
	hdr, err := CARHeader(root)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.Write(hdr); err != nil {
		return nil, err
	}
	return &CARWriter{w: bw}, nil
}

// Write writes one block.
func (cw *CARWriter) Write(c cid.Cid, data []byte) error {
	cb := c.Bytes()
	cw.scratch = binary.AppendUvarint(cw.scratch[:0], uint64(len(cb)+len(data)))
	if _, err := cw.w.Write(cw.scratch); err != nil {
		return err
	}
	if _, err := cw.w.Write(cb); err != nil {
		return err
	}
	_, err := cw.w.Write(data)
	return err
}

// Flush flushes buffered output.
func (cw *CARWriter) Flush() error { return cw.w.Flush() }

// CAR returns a whole CAR file holding blocks with root as its single root.
func CAR(root cid.Cid, blocks []Block) ([]byte, error) {
	hdr, err := CARHeader(root)
	if err != nil {
		return nil, err
	}
	n := len(hdr)
	for _, b := range blocks {
		n += len(b.Data) + 48
	}
	out := make([]byte, 0, n)
	out = append(out, hdr...)
	for _, b := range blocks {
		out = AppendCARBlock(out, b.CID, b.Data)
	}
	return out, nil
}
