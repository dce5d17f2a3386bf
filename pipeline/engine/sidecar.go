package engine

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net"
	"path"

	"github.com/mftflow/mftflow/pipeline"
)

// writeChecksum writes f's checksum file through sink s after f committed
// there, when the sink asks for one (SinkSpec.Checksum): NAME.sha256 (or
// .sha512, .md5) holding the line sha256sum prints for it
// (pipeline.ChecksumLine); more holds the digests beyond sha256. It comes
// after the file so that a partner who waits for it finds the file whole.
// One left by an earlier attempt of the delivery (the sink skips it or
// refuses to replace it) counts as written.
func (r *Run) writeChecksum(ctx context.Context, s *sinkRun, f pipeline.File, more map[string]string) error {
	alg := s.spec.Checksum
	if alg == "" {
		return nil
	}
	sum := f.SHA256
	if alg != "sha256" {
		sum = more[alg]
	}
	if sum == "" {
		return pipeline.Permanent(fmt.Errorf("the file's %s is unknown: it was read before the sink's checksum was set to %s; replay it with runner replay --file %s to read it again", alg, alg, f.ID))
	}
	body := []byte(pipeline.ChecksumLine(sum, path.Base(f.Name)))
	bodySum := sha256.Sum256(body)
	side := pipeline.File{ID: f.ID + "." + alg, Key: f.Key + "." + alg, Name: f.Name + "." + alg,
		Size: int64(len(body)), SHA256: hex.EncodeToString(bodySum[:]), ModTime: f.ModTime, Attrs: f.Attrs}
	err := writeSmall(ctx, s, side, body)
	if errors.Is(err, pipeline.ErrSkip) || errors.Is(err, pipeline.ErrExists) {
		r.log.Info("the sink holds the checksum file already; left as it is", "file", side.Name, "sink", s.spec.Name)
		return nil
	}
	return err
}

// writeSmall writes data as file f to sink s in one part.
func writeSmall(ctx context.Context, s *sinkRun, f pipeline.File, data []byte) error {
	if ww, ok := s.sink.(pipeline.WholeWriter); ok {
		if err := s.wait(ctx, int64(len(data))); err != nil {
			return err
		}
		return ww.WriteWhole(ctx, f, data)
	}
	up, err := s.sink.Open(ctx, f, nil)
	if err != nil {
		return err
	}
	up.Plan() // one part whatever it says; called as the contract asks
	if err := writePart(ctx, up, pipeline.Part{Size: f.Size, Last: true}, net.Buffers{data}, s); err != nil {
		_ = up.Abort(context.WithoutCancel(ctx), err) // the write's error is the one to report
		return err
	}
	return up.Commit(ctx, f)
}

// digests hashes a file's bytes for the checksum files its flow's sinks
// ask for beyond sha256 (which every file gets), by name.
type digests map[string]hash.Hash

// newDigests returns the digests the run's sinks need; nil when none.
func (r *Run) newDigests() digests {
	var d digests
	for _, s := range r.sinks {
		alg := s.spec.Checksum
		if alg == "" || alg == "sha256" || d[alg] != nil {
			continue
		}
		if d == nil {
			d = digests{}
		}
		d[alg] = pipeline.NewHash(alg)
	}
	return d
}

func (d digests) Write(p []byte) {
	for _, h := range d {
		h.Write(p)
	}
}

// sums returns the hex digests; nil when there are none.
func (d digests) sums() map[string]string {
	if len(d) == 0 {
		return nil
	}
	out := make(map[string]string, len(d))
	for alg, h := range d {
		out[alg] = hex.EncodeToString(h.Sum(nil))
	}
	return out
}

// of returns the hex digests of data.
func (d digests) of(data []byte) map[string]string {
	d.Write(data)
	return d.sums()
}

// state returns the marshalled states, for a checkpoint.
func (d digests) state() (map[string][]byte, error) {
	if len(d) == 0 {
		return nil, nil
	}
	out := make(map[string][]byte, len(d))
	for alg, h := range d {
		b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, err
		}
		out[alg] = b
	}
	return out, nil
}

// restore sets the states from a checkpoint; false when one is missing
// (the sinks' checksums changed since) or does not load.
func (d digests) restore(st map[string][]byte) bool {
	for alg, h := range d {
		b, ok := st[alg]
		if !ok || h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b) != nil {
			return false
		}
	}
	return true
}
