package classify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
)

// JPEG segment walker.
//
// No maintained, served Go library exposes JPEG APP segments together with
// C2PA APP11 reassembly (the dsoprea structure packages are not served, and
// image/jpeg skips APPn), so this is a small hand-written walker. Every
// length is checked against the bytes left; the walk stops at SOS or EOI.

const (
	jpegMarkerSOS  = 0xDA
	jpegMarkerEOI  = 0xD9
	jpegMarkerAPP1 = 0xE1
	jpegMarkerAPPB = 0xEB // APP11: JPEG XT / JUMBF boxes (C2PA)
	jpegMarkerCOM  = 0xFE
)

const (
	jpegExifPrefix   = "Exif\x00\x00"
	jpegXMPPrefix    = "http://ns.adobe.com/xap/1.0/\x00"
	jpegExtXMPPrefix = "http://ns.adobe.com/xmp/extension/\x00"
)

// app11Packet is one APP11 JUMBF segment: common identifier "JP", box
// instance number En, packet sequence number Z, then box bytes.
type app11Packet struct {
	en   uint16
	z    uint32
	data []byte
}

// extXMP gathers one ExtendedXMP packet split across APP1 segments.
type extXMP struct {
	guid  string
	total uint32
	buf   []byte
	got   int
}

func parseJPEG(b []byte) (*Metadata, error) {
	md := &Metadata{Format: "jpeg"}
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return md, fmt.Errorf("jpeg: missing SOI: %w", ErrMalformed)
	}
	var packets []app11Packet
	var ext []*extXMP
	segs := 0
	pos := 2
	for pos < len(b) {
		if b[pos] != 0xFF {
			md.problem(fmt.Errorf("jpeg: expected marker at %d: %w", pos, ErrMalformed))
			break
		}
		// Skip fill bytes (any number of 0xFF before the marker code).
		for pos < len(b) && b[pos] == 0xFF {
			pos++
		}
		if pos >= len(b) {
			md.problem(fmt.Errorf("jpeg: marker at end of data: %w", ErrTruncated))
			break
		}
		marker := b[pos]
		pos++
		if marker == jpegMarkerSOS || marker == jpegMarkerEOI {
			break
		}
		// Standalone markers carry no length.
		if marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0xD8 {
			continue
		}
		if len(b)-pos < 2 {
			md.problem(fmt.Errorf("jpeg: segment length at %d: %w", pos, ErrTruncated))
			break
		}
		segLen := int(binary.BigEndian.Uint16(b[pos:]))
		if segLen < 2 {
			md.problem(fmt.Errorf("jpeg: segment length %d at %d: %w", segLen, pos, ErrMalformed))
			break
		}
		if segLen > len(b)-pos {
			md.problem(fmt.Errorf("jpeg: segment 0x%02X length %d exceeds %d bytes left: %w", marker, segLen, len(b)-pos, ErrTruncated))
			break
		}
		payload := b[pos+2 : pos+segLen]
		pos += segLen
		segs++
		if segs > 4*maxParts {
			md.problem(fmt.Errorf("jpeg: more than %d segments: %w", 4*maxParts, ErrLimit))
			break
		}
		switch marker {
		case jpegMarkerAPP1:
			jpegAPP1(md, payload, &ext)
		case jpegMarkerAPPB:
			if len(payload) >= 8 && payload[0] == 'J' && payload[1] == 'P' {
				if len(packets) >= maxParts {
					md.problem(fmt.Errorf("jpeg: more than %d APP11 packets: %w", maxParts, ErrLimit))
					continue
				}
				packets = append(packets, app11Packet{
					en:   binary.BigEndian.Uint16(payload[2:]),
					z:    binary.BigEndian.Uint32(payload[4:]),
					data: payload[8:],
				})
			}
		case jpegMarkerCOM:
			if len(md.Text) < maxParts {
				md.Text = append(md.Text, TextField{Key: "Comment", Value: string(payload), Locator: "jpeg:COM"})
			}
		}
	}
	for _, e := range ext {
		if e.got < len(e.buf) {
			md.problem(fmt.Errorf("jpeg: ExtendedXMP %s has %d of %d bytes: %w", e.guid, e.got, len(e.buf), ErrTruncated))
		}
		md.XMP = append(md.XMP, Part{Locator: "jpeg:APP1[ExtendedXMP " + e.guid + "]", Data: e.buf})
	}
	reassembleAPP11(md, packets)
	return md, nil
}

func jpegAPP1(md *Metadata, p []byte, ext *[]*extXMP) {
	switch {
	case bytes.HasPrefix(p, []byte(jpegExifPrefix)):
		if len(md.EXIF) < maxParts {
			md.EXIF = append(md.EXIF, Part{Locator: "jpeg:APP1[Exif]", Data: p[len(jpegExifPrefix):]})
		}
	case bytes.HasPrefix(p, []byte(jpegXMPPrefix)):
		if len(md.XMP) < maxParts {
			md.XMP = append(md.XMP, Part{Locator: "jpeg:APP1[XMP]", Data: p[len(jpegXMPPrefix):]})
		}
	case bytes.HasPrefix(p, []byte(jpegExtXMPPrefix)):
		// GUID (32 ASCII hex) | full length u32 | offset u32 | chunk.
		p = p[len(jpegExtXMPPrefix):]
		if len(p) < 40 {
			md.problem(fmt.Errorf("jpeg: ExtendedXMP header: %w", ErrTruncated))
			return
		}
		guid := string(bytes.ToValidUTF8(p[:32], []byte("?")))
		total := binary.BigEndian.Uint32(p[32:])
		off := binary.BigEndian.Uint32(p[36:])
		chunk := p[40:]
		if total > maxTextBytes {
			md.problem(fmt.Errorf("jpeg: ExtendedXMP length %d: %w", total, ErrLimit))
			return
		}
		var e *extXMP
		for _, x := range *ext {
			if x.guid == guid {
				e = x
			}
		}
		if e == nil {
			if len(*ext) >= 8 {
				md.problem(fmt.Errorf("jpeg: too many ExtendedXMP packets: %w", ErrLimit))
				return
			}
			e = &extXMP{guid: guid, total: total, buf: make([]byte, total)}
			*ext = append(*ext, e)
		}
		if total != e.total || uint64(off)+uint64(len(chunk)) > uint64(e.total) {
			md.problem(fmt.Errorf("jpeg: ExtendedXMP chunk at %d out of range: %w", off, ErrMalformed))
			return
		}
		e.got += copy(e.buf[off:], chunk)
	}
}

// reassembleAPP11 joins APP11 packets into JUMBF boxes. Packets are grouped
// by box instance number En and ordered by sequence number Z (starting at
// 1, or at 0 as some writers do). The first packet holds the box from its LBox; every continuation
// repeats the box's 8-byte LBox+TBox header, which is dropped. A gap in
// the sequence ends the box at the gap (the truncated box then fails to
// parse and is reported, never guessed at).
func reassembleAPP11(md *Metadata, packets []app11Packet) {
	if len(packets) == 0 {
		return
	}
	sort.SliceStable(packets, func(i, j int) bool {
		if packets[i].en != packets[j].en {
			return packets[i].en < packets[j].en
		}
		return packets[i].z < packets[j].z
	})
	for i := 0; i < len(packets); {
		j := i
		for j < len(packets) && packets[j].en == packets[i].en {
			j++
		}
		group := packets[i:j]
		i = j
		en := group[0].en
		// The JPEG XT spec numbers packets from 1, but real writers (Bing
		// Image Creator, Microsoft Designer) start at 0, and the C2PA SDK
		// reads those: accept either start, nothing later.
		first := group[0].z
		if first > 1 {
			md.problem(fmt.Errorf("jpeg: APP11 En=%04X starts at Z=%d: %w", en, first, ErrMalformed))
			continue
		}
		var buf []byte
		want := first
		for _, p := range group {
			if p.z < want { // duplicate sequence number: keep the first
				md.problem(fmt.Errorf("jpeg: APP11 En=%04X duplicate Z=%d: %w", en, p.z, ErrMalformed))
				continue
			}
			if p.z != want {
				md.problem(fmt.Errorf("jpeg: APP11 En=%04X missing Z=%d: %w", en, want, ErrTruncated))
				break
			}
			d := p.data
			if p.z > first {
				if len(d) < 8 {
					md.problem(fmt.Errorf("jpeg: APP11 En=%04X Z=%d short: %w", en, p.z, ErrTruncated))
					break
				}
				d = d[8:]
			}
			if len(buf)+len(d) > MaxMediaBytes {
				md.problem(fmt.Errorf("jpeg: APP11 En=%04X too large: %w", en, ErrLimit))
				break
			}
			buf = append(buf, d...)
			want++
		}
		if len(buf) < 8 || string(buf[4:8]) != "jumb" {
			continue // APP11 but not a JUMBF superbox (e.g. other JPEG XT data)
		}
		if len(md.C2PA) < maxParts {
			md.C2PA = append(md.C2PA, Part{Locator: fmt.Sprintf("jpeg:APP11[En=%04X]", en), Data: buf})
		}
	}
}
