package wire

import (
	"context"
	"errors"
	"io"
	"io/fs"

	"github.com/mftflow/mftflow/pipeline"
	pb "github.com/mftflow/mftflow/plugins/internal/pluginpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorToStatus converts a connector's error into a gRPC status error whose
// Error detail keeps what the engine needs to know about it. nil stays nil.
func ErrorToStatus(err error) error { return toStatus(err, false) }

// NotFoundToStatus is ErrorToStatus for the answers of calls only hosts that
// know the kind NOT_FOUND make (ReadSibling): an error matching
// fs.ErrNotExist keeps that identity, and its permanence beside it.
// Elsewhere such an error keeps the kind it always had, which older hosts
// read as they always did.
func NotFoundToStatus(err error) error { return toStatus(err, true) }

func toStatus(err error, notFound bool) error {
	if err == nil {
		return nil
	}
	kind, code := pb.Error_RETRYABLE, codes.Unknown
	switch {
	case errors.Is(err, io.EOF):
		kind, code = pb.Error_END, codes.OutOfRange
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, pipeline.ErrSkip):
		kind = pb.Error_SKIP
	case errors.Is(err, pipeline.ErrExists):
		kind, code = pb.Error_EXISTS, codes.AlreadyExists
	case errors.Is(err, pipeline.ErrBadName):
		kind, code = pb.Error_BAD_NAME, codes.InvalidArgument
	case notFound && errors.Is(err, fs.ErrNotExist):
		kind, code = pb.Error_NOT_FOUND, codes.NotFound
	case pipeline.IsPermanent(err):
		kind, code = pb.Error_PERMANENT, codes.FailedPrecondition
	}
	detail := &pb.Error{Kind: kind, Message: err.Error(), Permanent: kind == pb.Error_NOT_FOUND && pipeline.IsPermanent(err)}
	st, derr := status.New(code, err.Error()).WithDetails(detail)
	if derr != nil {
		return status.Error(code, err.Error())
	}
	return st.Err()
}

// RemoteError is an error returned by a plugin, with its message as the
// plugin wrote it and its kind preserved: errors.Is matches the pipeline's
// sentinel errors, io.EOF and fs.ErrNotExist, and pipeline.IsPermanent
// sees permanence.
type RemoteError struct {
	Kind    pb.Error_Kind
	Message string
	// NotFoundPermanent: a NOT_FOUND error that is permanent too.
	NotFoundPermanent bool
}

func (e *RemoteError) Error() string { return e.Message }

// Permanent reports whether retrying cannot help.
func (e *RemoteError) Permanent() bool {
	switch e.Kind {
	case pb.Error_PERMANENT, pb.Error_EXISTS, pb.Error_BAD_NAME:
		return true
	case pb.Error_NOT_FOUND:
		return e.NotFoundPermanent
	}
	return false
}

// Is matches the sentinel the kind stands for.
func (e *RemoteError) Is(target error) bool {
	switch e.Kind {
	case pb.Error_SKIP:
		return target == pipeline.ErrSkip
	case pb.Error_EXISTS:
		return target == pipeline.ErrExists
	case pb.Error_BAD_NAME:
		return target == pipeline.ErrBadName
	case pb.Error_END:
		return target == io.EOF
	case pb.Error_NOT_FOUND:
		return target == fs.ErrNotExist
	}
	return false
}

// ErrorFromStatus converts an error returned by a gRPC call back into a
// connector error. Errors without an Error detail (the connection broke, the
// plugin process died) are returned unchanged: they are retryable.
func ErrorFromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if e, ok := d.(*pb.Error); ok {
			if e.Kind == pb.Error_END {
				return io.EOF
			}
			return &RemoteError{Kind: e.Kind, Message: e.Message, NotFoundPermanent: e.Permanent}
		}
	}
	return err
}
