package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"path"

	"github.com/mftflow/mftflow/pipeline"
)

// writeChecksum writes f's checksum file through sink s after f committed
// there, when the sink asks for one (SinkSpec.Checksum): NAME.sha256
// holding "HEX  BASE\n", as sha256sum prints it and `sha256sum -c` reads
// it. It comes after the file so that a partner who waits for it finds the
// file whole. One left by an earlier attempt of the delivery (the sink
// skips it or refuses to replace it) counts as written.
func (r *Run) writeChecksum(ctx context.Context, s *sinkRun, f pipeline.File) error {
	alg := s.spec.Checksum
	if alg == "" || f.SHA256 == "" {
		return nil
	}
	body := []byte(f.SHA256 + "  " + path.Base(f.Name) + "\n")
	sum := sha256.Sum256(body)
	side := pipeline.File{ID: f.ID + "." + alg, Key: f.Key + "." + alg, Name: f.Name + "." + alg,
		Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), ModTime: f.ModTime, Attrs: f.Attrs}
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
		up.Abort(context.WithoutCancel(ctx), err)
		return err
	}
	return up.Commit(ctx, f)
}
