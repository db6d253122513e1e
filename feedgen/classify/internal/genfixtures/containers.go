package main

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"sort"
)

// Container builders: each takes a tiny image and splices metadata in.

func testImage(seed uint8) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			img.Set(x, y, color.RGBA{R: seed + uint8(x*8), G: uint8(y * 12), B: 255 - seed, A: 255})
		}
	}
	return img
}

// ---- PNG ----

type pngChunk struct {
	typ  string
	data []byte
	late bool // insert before IEND instead of after IHDR
	crc  func(uint32) uint32
}

func pngChunkBytes(c pngChunk) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(c.data)))
	b.WriteString(c.typ)
	b.Write(c.data)
	crc := crc32.ChecksumIEEE(append([]byte(c.typ), c.data...))
	if c.crc != nil {
		crc = c.crc(crc)
	}
	binary.Write(&b, binary.BigEndian, crc)
	return b.Bytes()
}

func buildPNG(seed uint8, chunks ...pngChunk) ([]byte, error) {
	var enc bytes.Buffer
	if err := png.Encode(&enc, testImage(seed)); err != nil {
		return nil, fmt.Errorf("png encode: %w", err)
	}
	b := enc.Bytes()
	const afterIHDR = 8 + 25
	iend := len(b) - 12
	var out bytes.Buffer
	out.Write(b[:afterIHDR])
	for _, c := range chunks {
		if !c.late {
			out.Write(pngChunkBytes(c))
		}
	}
	out.Write(b[afterIHDR:iend])
	for _, c := range chunks {
		if c.late {
			out.Write(pngChunkBytes(c))
		}
	}
	out.Write(b[iend:])
	return out.Bytes(), nil
}

func tEXt(key, val string) pngChunk {
	return pngChunk{typ: "tEXt", data: []byte(key + "\x00" + val)}
}

func zTXt(key, val string) pngChunk {
	return pngChunk{typ: "zTXt", data: append([]byte(key+"\x00\x00"), deflate([]byte(val))...)}
}

func iTXt(key, val string, compressed bool) pngChunk {
	d := []byte(key + "\x00")
	if compressed {
		d = append(d, 1, 0)
	} else {
		d = append(d, 0, 0)
	}
	d = append(d, "\x00\x00"...) // empty language tag and translated keyword
	if compressed {
		d = append(d, deflate([]byte(val))...)
	} else {
		d = append(d, val...)
	}
	return pngChunk{typ: "iTXt", data: d}
}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// ---- JPEG ----

type jpegSeg struct {
	marker  byte
	payload []byte
}

func buildJPEG(seed uint8, segs ...jpegSeg) ([]byte, error) {
	var enc bytes.Buffer
	if err := jpeg.Encode(&enc, testImage(seed), &jpeg.Options{Quality: 40}); err != nil {
		return nil, fmt.Errorf("jpeg encode: %w", err)
	}
	b := enc.Bytes()
	var out bytes.Buffer
	out.Write(b[:2]) // SOI
	for _, s := range segs {
		if len(s.payload)+2 > 0xFFFF {
			return nil, fmt.Errorf("segment too long")
		}
		out.Write([]byte{0xFF, s.marker})
		binary.Write(&out, binary.BigEndian, uint16(len(s.payload)+2))
		out.Write(s.payload)
	}
	out.Write(b[2:])
	return out.Bytes(), nil
}

func app1Exif(tiff []byte) jpegSeg {
	return jpegSeg{0xE1, append([]byte("Exif\x00\x00"), tiff...)}
}

func app1XMP(packet string) jpegSeg {
	return jpegSeg{0xE1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"), packet...)}
}

// app1ExtXMP splits an ExtendedXMP packet into APP1 segments of chunk bytes.
func app1ExtXMP(guid, packet string, chunk int) []jpegSeg {
	var segs []jpegSeg
	for off := 0; off < len(packet); off += chunk {
		end := min(off+chunk, len(packet))
		var p bytes.Buffer
		p.WriteString("http://ns.adobe.com/xmp/extension/\x00")
		p.WriteString(guid)
		binary.Write(&p, binary.BigEndian, uint32(len(packet)))
		binary.Write(&p, binary.BigEndian, uint32(off))
		p.WriteString(packet[off:end])
		segs = append(segs, jpegSeg{0xE1, p.Bytes()})
	}
	return segs
}

// app11JUMBF splits a JUMBF superbox into APP11 segments: "JP", En, Z
// (from 1), then box bytes; continuations repeat the 8-byte LBox+TBox.
func app11JUMBF(en uint16, box []byte, chunk int) []jpegSeg {
	var segs []jpegSeg
	z := uint32(1)
	for off := 0; off < len(box); off += chunk {
		end := min(off+chunk, len(box))
		var p bytes.Buffer
		p.WriteString("JP")
		binary.Write(&p, binary.BigEndian, en)
		binary.Write(&p, binary.BigEndian, z)
		if z > 1 {
			p.Write(box[:8])
		}
		p.Write(box[off:end])
		segs = append(segs, jpegSeg{0xEB, p.Bytes()})
		z++
	}
	return segs
}

// ---- WebP (VP8L lossless, hand-built) ----

type bitWriter struct {
	buf []byte
	acc uint64
	n   uint
}

func (w *bitWriter) put(v uint64, bits uint) {
	w.acc |= v << w.n
	w.n += bits
	for w.n >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.n > 0 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc, w.n = 0, 0
	}
	return w.buf
}

// simpleCode writes a one-symbol "simple" prefix code: the symbol then
// costs zero bits per pixel.
func (w *bitWriter) simpleCode(sym uint64) {
	w.put(1, 1) // simple code
	w.put(0, 1) // one symbol
	if sym < 2 {
		w.put(0, 1)
		w.put(sym, 1)
	} else {
		w.put(1, 1)
		w.put(sym, 8)
	}
}

// vp8l returns a solid-colour w×h lossless bitstream.
func vp8l(w, h int, r, g, b uint8) []byte {
	bw := &bitWriter{buf: []byte{0x2F}}
	bw.put(uint64(w-1), 14)
	bw.put(uint64(h-1), 14)
	bw.put(0, 1) // alpha unused
	bw.put(0, 3) // version
	bw.put(0, 1) // no transform
	bw.put(0, 1) // no colour cache
	bw.put(0, 1) // no meta prefix codes
	bw.simpleCode(uint64(g))
	bw.simpleCode(uint64(r))
	bw.simpleCode(uint64(b))
	bw.simpleCode(255) // alpha
	bw.simpleCode(0)   // distance
	return bw.bytes()
}

type riffChunk struct {
	fourcc string
	data   []byte
}

func riffBytes(c riffChunk) []byte {
	var b bytes.Buffer
	b.WriteString(c.fourcc)
	binary.Write(&b, binary.LittleEndian, uint32(len(c.data)))
	b.Write(c.data)
	if len(c.data)%2 == 1 {
		b.WriteByte(0)
	}
	return b.Bytes()
}

// buildWebP writes VP8X (when there is metadata) + VP8L + metadata chunks
// in the order given (C2PA last, as c2pa-rs writes it).
func buildWebP(seed uint8, meta ...riffChunk) []byte {
	const w, h = 16, 16
	var body bytes.Buffer
	body.WriteString("WEBP")
	if len(meta) > 0 {
		var flags byte
		for _, m := range meta {
			switch m.fourcc {
			case "EXIF":
				flags |= 0x08
			case "XMP ":
				flags |= 0x04
			}
		}
		vp8x := []byte{flags, 0, 0, 0, w - 1, 0, 0, h - 1, 0, 0}
		body.Write(riffBytes(riffChunk{"VP8X", vp8x}))
	}
	body.Write(riffBytes(riffChunk{"VP8L", vp8l(w, h, seed, 128, 255-seed)}))
	for _, m := range meta {
		body.Write(riffBytes(m))
	}
	var out bytes.Buffer
	out.WriteString("RIFF")
	binary.Write(&out, binary.LittleEndian, uint32(body.Len()))
	out.Write(body.Bytes())
	return out.Bytes()
}

// ---- EXIF / TIFF ----

// byteOrder is what binary.BigEndian and binary.LittleEndian both provide.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

type tiffEntry struct {
	tag  uint16
	typ  uint16 // 2 ASCII, 7 UNDEFINED
	data []byte
}

func ascii(tag uint16, s string) tiffEntry { return tiffEntry{tag, 2, append([]byte(s), 0)} }

// buildTIFF lays out IFD0, an optional Exif IFD right after it, then the
// value area. Entries are sorted by tag as TIFF requires.
func buildTIFF(bo byteOrder, ifd0, exif []tiffEntry) []byte {
	if len(exif) > 0 {
		ifd0 = append(ifd0, tiffEntry{tag: 0x8769, typ: 4})
	}
	sort.Slice(ifd0, func(i, j int) bool { return ifd0[i].tag < ifd0[j].tag })
	sort.Slice(exif, func(i, j int) bool { return exif[i].tag < exif[j].tag })
	size0 := 2 + 12*len(ifd0) + 4
	exifOff := 8 + size0
	dataOff := exifOff
	if len(exif) > 0 {
		dataOff += 2 + 12*len(exif) + 4
	}
	var data []byte
	entries := func(list []tiffEntry) []byte {
		var b []byte
		b = bo.AppendUint16(b, uint16(len(list)))
		for _, e := range list {
			b = bo.AppendUint16(b, e.tag)
			b = bo.AppendUint16(b, e.typ)
			if e.tag == 0x8769 {
				b = bo.AppendUint32(b, 1)
				b = bo.AppendUint32(b, uint32(exifOff))
				continue
			}
			b = bo.AppendUint32(b, uint32(len(e.data)))
			if len(e.data) <= 4 {
				v := make([]byte, 4)
				copy(v, e.data)
				b = append(b, v...)
				continue
			}
			b = bo.AppendUint32(b, uint32(dataOff+len(data)))
			data = append(data, e.data...)
			if len(data)%2 == 1 {
				data = append(data, 0)
			}
		}
		return bo.AppendUint32(b, 0) // no next IFD
	}
	var out []byte
	if bo.String() == binary.BigEndian.String() {
		out = append(out, 'M', 'M', 0, 42)
	} else {
		out = append(out, 'I', 'I', 42, 0)
	}
	out = bo.AppendUint32(out, 8)
	out = append(out, entries(ifd0)...)
	if len(exif) > 0 {
		out = append(out, entries(exif)...)
	}
	return append(out, data...)
}

// userCommentUnicode encodes an EXIF UserComment as "UNICODE\0" + UTF-16.
func userCommentUnicode(s string, bo byteOrder) tiffEntry {
	d := []byte("UNICODE\x00")
	for _, r := range s {
		if r > 0xFFFF {
			r = '?'
		}
		d = bo.AppendUint16(d, uint16(r))
	}
	return tiffEntry{0x9286, 7, d}
}

func userCommentASCII(s string) tiffEntry {
	return tiffEntry{0x9286, 7, append([]byte("ASCII\x00\x00\x00"), s...)}
}

// ---- XMP ----

// xmpPacket wraps rdf:Description attributes and children in a packet.
func xmpPacket(attrs, children string) string {
	return "<?xpacket begin=\"\ufeff\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n" +
		"<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n" +
		" <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n" +
		"  <rdf:Description rdf:about=\"\"\n" +
		"    xmlns:Iptc4xmpExt=\"http://iptc.org/std/Iptc4xmpExt/2008-02-29/\"\n" +
		"    xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\"\n" +
		"    xmlns:dc=\"http://purl.org/dc/elements/1.1/\"\n" +
		"    xmlns:xmpNote=\"http://ns.adobe.com/xmp/note/\"\n" +
		"    " + attrs + ">\n" + children +
		"  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>"
}
