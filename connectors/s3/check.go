package s3

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/mftflow/mftflow/pipeline"
)

// MaxPartSize is the largest part S3 accepts.
const MaxPartSize = 5 << 30

// The specs' Check and Place functions: what NewSource and NewSink would
// refuse, found without building a client, and where each reads or writes.

func fieldError(field, format string, args ...any) error {
	return &pipeline.FieldError{Connector: "s3", Field: field, Err: fmt.Errorf(format, args...)}
}

// checkClient reports what ClientConfig.check refuses, at the field it
// concerns where there is one.
func checkClient(c ClientConfig) error {
	err := c.check()
	if err == nil {
		return nil
	}
	msg := strings.TrimPrefix(err.Error(), "s3: ")
	if rest, ok := strings.CutPrefix(msg, "endpoint"); ok {
		return fieldError("endpoint", "%s", strings.TrimLeft(rest, ": "))
	}
	return errors.New(msg)
}

func checkGlobs(c SourceConfig) []error {
	var errs []error
	for _, list := range []struct {
		field string
		globs []string
	}{{"include", c.Include}, {"exclude", c.Exclude}} {
		for _, g := range list.globs {
			if !doublestar.ValidatePattern(g) {
				errs = append(errs, fieldError(list.field, `invalid glob pattern %q: close every "[" and "{", or escape them with "\"`, g))
			}
		}
	}
	return errs
}

func checkSource(c SourceConfig) error {
	errs := checkGlobs(c)
	if err := checkClient(c.ClientConfig); err != nil {
		errs = append(errs, err)
	}
	switch c.After {
	case AfterMove:
		archive, prefix := dirPrefix(c.ArchivePrefix), dirPrefix(c.Prefix)
		switch {
		case archive == "":
			errs = append(errs, fieldError("archive_prefix", `required when after is "move": name the prefix delivered objects are moved to`))
		case strings.HasPrefix(archive, prefix):
			errs = append(errs, fieldError("archive_prefix", "%q lies below prefix %q: moved objects would be read again; choose a prefix outside it",
				c.ArchivePrefix, c.Prefix))
		}
	case AfterTag:
		if len(c.AfterTags) == 0 {
			errs = append(errs, fieldError("after_tags", `required when after is "tag": give the tags to set, such as {mftflow: delivered}`))
		}
	}
	return errors.Join(errs...)
}

func checkSink(c SinkConfig) error {
	var errs []error
	if err := checkClient(c.ClientConfig); err != nil {
		errs = append(errs, err)
	}
	if strings.HasPrefix(c.Prefix, "/") {
		errs = append(errs, fieldError("prefix", "%q: keys do not start with a slash; drop it", c.Prefix))
	}
	if err := pipeline.CheckNameTemplate(keyOrDefault(c.Key)); err != nil {
		errs = append(errs, fieldError("key", "%v", err))
	}
	for _, size := range []struct {
		field string
		n     int64
	}{{"part_size", c.PartSize}, {"unknown_size_part_size", c.UnknownSizePartSize}} {
		if size.n > MaxPartSize {
			errs = append(errs, fieldError(size.field, "%s is above S3's limit of %s per part; lower it",
				pipeline.ExactSize(size.n), pipeline.ExactSize(MaxPartSize)))
		}
	}
	if n := c.Concurrency; n < 0 || n > pipeline.MaxParallelism {
		errs = append(errs, fieldError("concurrency", "%d: want 0 (the sink's parallelism) to %d parts of one file at once",
			n, pipeline.MaxParallelism))
	}
	if c.KMSKeyID != "" && c.SSE != SSEKMS {
		errs = append(errs, fieldError("kms_key_id", `is set but sse is not "aws:kms": set sse: aws:kms, or remove kms_key_id`))
	}
	return errors.Join(errs...)
}

func keyOrDefault(tmpl string) string {
	if tmpl == "" {
		return "{name}"
	}
	return tmpl
}

// store names a bucket on a server for pipeline.Place.
func store(c ClientConfig) string {
	endpoint := strings.TrimSuffix(strings.ToLower(c.Endpoint), "/")
	return "s3 " + endpoint + " " + c.Bucket
}

// placeText describes a bucket prefix: "s3://bucket/in/ at http://host:9000".
func placeText(c ClientConfig, dir string) string {
	text := "s3://" + c.Bucket + "/"
	if dir != "" {
		text += dir + "/"
	}
	if e := c.Endpoint; e != "" && !strings.Contains(e, "@") {
		text += " at " + e
	}
	return text
}

// cleanPrefix returns a prefix as a clean directory, "" for the whole bucket.
func cleanPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

func sourcePlace(c SourceConfig) (pipeline.Place, bool) {
	dir := cleanPrefix(c.Prefix)
	exclude := c.Exclude
	skips := func(rel string) bool {
		for _, g := range exclude {
			if ok, _ := doublestar.Match(g, rel+"/**"); ok {
				return true
			}
		}
		return false
	}
	return pipeline.Place{Store: store(c.ClientConfig), Dir: dir, Text: placeText(c.ClientConfig, dir), Skips: skips}, true
}

func sinkPlace(c SinkConfig) (pipeline.Place, bool) {
	dir := cleanPrefix(c.Prefix)
	if sub := pipeline.TemplateDir(keyOrDefault(c.Key)); sub != "" {
		dir = path.Join(dir, sub)
		if dir == "." {
			dir = ""
		}
	}
	return pipeline.Place{Store: store(c.ClientConfig), Dir: dir, Text: placeText(c.ClientConfig, dir)}, true
}
