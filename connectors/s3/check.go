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

func checkGlobs(c pipeline.Config) []error {
	var errs []error
	for _, field := range []string{"include", "exclude"} {
		for _, g := range c.Strings(field) {
			if !doublestar.ValidatePattern(g) {
				errs = append(errs, fieldError(field, `invalid glob pattern %q: close every "[" and "{", or escape them with "\"`, g))
			}
		}
	}
	return errs
}

func checkSource(c pipeline.Config) error {
	errs := checkGlobs(c)
	if err := checkClient(clientConfigOf(c)); err != nil {
		errs = append(errs, err)
	}
	switch c.String("after") {
	case AfterMove:
		archive, prefix := dirPrefix(c.String("archive_prefix")), dirPrefix(c.String("prefix"))
		switch {
		case archive == "":
			errs = append(errs, fieldError("archive_prefix", `required when after is "move": name the prefix delivered objects are moved to`))
		case strings.HasPrefix(archive, prefix):
			errs = append(errs, fieldError("archive_prefix", "%q lies below prefix %q: moved objects would be read again; choose a prefix outside it",
				c.String("archive_prefix"), c.String("prefix")))
		}
	case AfterTag:
		if len(c.StringMap("after_tags")) == 0 {
			errs = append(errs, fieldError("after_tags", `required when after is "tag": give the tags to set, such as {mftflow: delivered}`))
		}
	}
	return errors.Join(errs...)
}

func checkSink(c pipeline.Config) error {
	var errs []error
	if err := checkClient(clientConfigOf(c)); err != nil {
		errs = append(errs, err)
	}
	if strings.HasPrefix(c.String("prefix"), "/") {
		errs = append(errs, fieldError("prefix", "%q: keys do not start with a slash; drop it", c.String("prefix")))
	}
	if err := pipeline.CheckNameTemplate(keyOrDefault(c.String("key"))); err != nil {
		errs = append(errs, fieldError("key", "%v", err))
	}
	for _, field := range []string{"part_size", "unknown_size_part_size"} {
		if n := c.Size(field); n > MaxPartSize {
			errs = append(errs, fieldError(field, "%s is above S3's limit of %s per part; lower it",
				pipeline.ExactSize(n), pipeline.ExactSize(MaxPartSize)))
		}
	}
	if n := c.Int("concurrency"); n < 0 || n > pipeline.MaxParallelism {
		errs = append(errs, fieldError("concurrency", "%d: want 0 (the sink's parallelism) to %d parts of one file at once",
			n, pipeline.MaxParallelism))
	}
	if c.String("kms_key_id") != "" && c.String("sse") != SSEKMS {
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
func store(c pipeline.Config) string {
	endpoint := strings.TrimSuffix(strings.ToLower(c.String("endpoint")), "/")
	return "s3 " + endpoint + " " + c.String("bucket")
}

// placeText describes a bucket prefix: "s3://bucket/in/ at http://host:9000".
func placeText(c pipeline.Config, dir string) string {
	text := "s3://" + c.String("bucket") + "/"
	if dir != "" {
		text += dir + "/"
	}
	if e := c.String("endpoint"); e != "" && !strings.Contains(e, "@") {
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

func sourcePlace(c pipeline.Config) (pipeline.Place, bool) {
	dir := cleanPrefix(c.String("prefix"))
	exclude := c.Strings("exclude")
	skips := func(rel string) bool {
		for _, g := range exclude {
			if ok, _ := doublestar.Match(g, rel+"/**"); ok {
				return true
			}
		}
		return false
	}
	return pipeline.Place{Store: store(c), Dir: dir, Text: placeText(c, dir), Skips: skips}, true
}

func sinkPlace(c pipeline.Config) (pipeline.Place, bool) {
	dir := cleanPrefix(c.String("prefix"))
	if sub := pipeline.TemplateDir(keyOrDefault(c.String("key"))); sub != "" {
		dir = path.Join(dir, sub)
		if dir == "." {
			dir = ""
		}
	}
	return pipeline.Place{Store: store(c), Dir: dir, Text: placeText(c, dir)}, true
}
