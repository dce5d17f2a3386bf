package bus

import (
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"

	"github.com/mftflow/mftflow/pipeline"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Chunk is one piece of a file on the bus.
type Chunk struct {
	Index int
	Data  []byte // raw, uncompressed; nil in a reference
	Last  bool
	// Ref is set on a reference: the chunk's bytes stay in the source file,
	// Len of them, with CRC-32C Sum (see Verify).
	Ref bool
	Len int
	Sum uint32
}

// RefTo returns a reference to data as chunk index of its file.
func RefTo(index int, data []byte, last bool) Chunk {
	return Chunk{Index: index, Last: last, Ref: true, Len: len(data), Sum: crc32.Checksum(data, castagnoli)}
}

// Verify checks bytes read from the source for reference c: they must be
// the bytes it was taken from, else the error wraps pipeline.ErrChanged.
func (c Chunk) Verify(data []byte) error {
	if len(data) != c.Len {
		return fmt.Errorf("%w: chunk %d has %d bytes there now, %d when it was read", pipeline.ErrChanged, c.Index, len(data), c.Len)
	}
	if sum := crc32.Checksum(data, castagnoli); sum != c.Sum {
		return fmt.Errorf("%w: chunk %d has CRC-32C %08x now, %08x when it was read", pipeline.ErrChanged, c.Index, sum, c.Sum)
	}
	return nil
}

// ErrCorrupt is returned by Decode for a chunk whose checksum or length does
// not match its headers.
var ErrCorrupt = errors.New("corrupt chunk")

// Codec encodes chunks as messages and back. It is safe for concurrent use.
type Codec struct {
	samples     sync.Pool // scratch buffers for shrinks
	compression string
	zenc        *zstd.Encoder
	zdec        *zstd.Decoder
}

// NewCodec returns a codec that compresses with "s2", "zstd" or "none".
// Whatever it encodes with, it decodes all three.
func NewCodec(compression string) (*Codec, error) {
	c := &Codec{compression: compression}
	var err error
	switch compression {
	case "s2", "none", "":
	case "zstd":
		c.zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("bus compression %q: want s2, zstd or none", compression)
	}
	c.zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Encode builds the message for chunk ch of the file whose chunks go to
// subject. Compressed data is used only when it saves at least 1/16; a chunk
// whose first 64 KiB do not shrink is not compressed at all, so random or
// already compressed data costs almost nothing.
func (c *Codec) Encode(subject string, ch Chunk) *nats.Msg {
	if ch.Ref {
		return encodeRef(subject, ch)
	}
	m := nats.NewMsg(subject)
	m.Header.Set(HeaderIndex, strconv.Itoa(ch.Index))
	m.Header.Set(HeaderLen, strconv.Itoa(len(ch.Data)))
	m.Header.Set(HeaderSum, fmt.Sprintf("%08x", crc32.Checksum(ch.Data, castagnoli)))
	if ch.Last {
		m.Header.Set(HeaderLast, "1")
	}
	m.Data = ch.Data
	if len(ch.Data) < 512 {
		return m
	}
	if c.compression == "none" || c.compression == "" || !c.shrinks(ch.Data) {
		return m
	}
	var packed []byte
	switch c.compression {
	case "s2":
		packed = s2.Encode(nil, ch.Data)
	case "zstd":
		packed = c.zenc.EncodeAll(ch.Data, nil)
	}
	if packed != nil && len(packed) < len(ch.Data)-len(ch.Data)/16 {
		m.Header.Set(HeaderEnc, c.compression)
		m.Data = packed
	}
	return m
}

// sampleSize is how much of a chunk is compressed first to see if it pays.
const sampleSize = 64 << 10

// shrinks reports whether data looks compressible: chunks up to twice the
// sample are simply tried; larger ones only if their first sampleSize bytes
// shrink by 1/16 under s2 (cheap even for data that does not).
func (c *Codec) shrinks(data []byte) bool {
	if len(data) <= 2*sampleSize {
		return true
	}
	buf, _ := c.samples.Get().(*[]byte)
	if buf == nil {
		b := make([]byte, s2.MaxEncodedLen(sampleSize))
		buf = &b
	}
	defer c.samples.Put(buf)
	return len(s2.Encode(*buf, data[:sampleSize])) < sampleSize-sampleSize/16
}

// Decode returns the chunk in a message, checking its length and checksum.
func (c *Codec) Decode(h nats.Header, data []byte) (Chunk, error) {
	idx, err := strconv.Atoi(h.Get(HeaderIndex))
	if err != nil || idx < 0 {
		return Chunk{}, fmt.Errorf("%w: bad %s header %q", ErrCorrupt, HeaderIndex, h.Get(HeaderIndex))
	}
	n, err := strconv.Atoi(h.Get(HeaderLen))
	if err != nil || n < 0 {
		return Chunk{}, fmt.Errorf("%w: chunk %d: bad %s header", ErrCorrupt, idx, HeaderLen)
	}
	if h.Get(HeaderRef) == "1" {
		return decodeRef(h, idx, n, data)
	}
	raw := data
	switch enc := h.Get(HeaderEnc); enc {
	case "":
	case "s2":
		if l, err := s2.DecodedLen(data); err != nil || l != n {
			return Chunk{}, fmt.Errorf("%w: chunk %d: s2 length", ErrCorrupt, idx)
		}
		raw, err = s2.Decode(make([]byte, n), data)
	case "zstd":
		raw, err = c.zdec.DecodeAll(data, make([]byte, 0, n))
	default:
		return Chunk{}, fmt.Errorf("%w: chunk %d: unknown encoding %q", ErrCorrupt, idx, enc)
	}
	if err != nil {
		return Chunk{}, fmt.Errorf("%w: chunk %d: %v", ErrCorrupt, idx, err)
	}
	if len(raw) != n {
		return Chunk{}, fmt.Errorf("%w: chunk %d: %d bytes, header says %d", ErrCorrupt, idx, len(raw), n)
	}
	if sum := fmt.Sprintf("%08x", crc32.Checksum(raw, castagnoli)); sum != h.Get(HeaderSum) {
		return Chunk{}, fmt.Errorf("%w: chunk %d: checksum %s, header says %s", ErrCorrupt, idx, sum, h.Get(HeaderSum))
	}
	return Chunk{Index: idx, Data: raw, Last: h.Get(HeaderLast) == "1"}, nil
}

// encodeRef builds the message of a reference: headers only.
func encodeRef(subject string, ch Chunk) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(HeaderIndex, strconv.Itoa(ch.Index))
	m.Header.Set(HeaderLen, strconv.Itoa(ch.Len))
	m.Header.Set(HeaderSum, fmt.Sprintf("%08x", ch.Sum))
	m.Header.Set(HeaderRef, "1")
	if ch.Last {
		m.Header.Set(HeaderLast, "1")
	}
	return m
}

func decodeRef(h nats.Header, idx, n int, data []byte) (Chunk, error) {
	if len(data) != 0 {
		return Chunk{}, fmt.Errorf("%w: chunk %d: a reference with %d bytes of data", ErrCorrupt, idx, len(data))
	}
	sum, err := strconv.ParseUint(h.Get(HeaderSum), 16, 32)
	if err != nil || fmt.Sprintf("%08x", sum) != h.Get(HeaderSum) {
		return Chunk{}, fmt.Errorf("%w: chunk %d: bad %s header %q", ErrCorrupt, idx, HeaderSum, h.Get(HeaderSum))
	}
	return Chunk{Index: idx, Last: h.Get(HeaderLast) == "1", Ref: true, Len: n, Sum: uint32(sum)}, nil
}
