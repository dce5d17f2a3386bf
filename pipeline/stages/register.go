package stages

import (
	"context"

	"github.com/mftflow/mftflow/pipeline"
)

// Specs of the built-in stages, in the order Register adds them.
func specs() []struct {
	spec pipeline.Spec
	new  pipeline.StageConstructor
} {
	return []struct {
		spec pipeline.Spec
		new  pipeline.StageConstructor
	}{
		{pipeline.Spec{
			Name:    "match",
			Summary: "Lets through only the files whose name and size match; drops the others as skipped.",
			Origin:  "built-in",
			Check:   checkMatch,
			// Decides from the name and size alone; the bytes pass untouched.
			KeepsContent: true,
			Fields: []pipeline.Field{
				{Name: "include", Type: pipeline.TypeStrings, Default: []string{"**"},
					Doc: `Globs the slash-separated name must match (one of them): * and ? stay within a directory, ** spans directories, {a,b} and [a-z] as usual. "*.csv" matches only at the top; use "**/*.csv" for any depth.`},
				{Name: "exclude", Type: pipeline.TypeStrings,
					Doc: "Globs, as include, that drop a file even if it is included."},
				{Name: "regex", Type: pipeline.TypeString,
					Doc: "A Go regular expression the name must also match, anywhere in the name unless anchored with ^ and $."},
				{Name: "min_size", Type: pipeline.TypeSize, Default: int64(0),
					Doc: "Drop files smaller than this. Checked only when the size is known: a file whose size is unknown (after compress, say) is never dropped for it."},
				{Name: "max_size", Type: pipeline.TypeSize, Default: int64(0),
					Doc: "Drop files larger than this; 0 means no limit. A file whose size is unknown passes, and fails once more than max_size bytes have been read."},
			},
		}, func(_ context.Context, c pipeline.Config) (pipeline.Stage, error) {
			s, err := NewMatch(MatchConfig{
				Include: c.Strings("include"),
				Exclude: c.Strings("exclude"),
				Regex:   c.String("regex"),
				MinSize: c.Size("min_size"),
				MaxSize: c.Size("max_size"),
			})
			if err != nil {
				return nil, err
			}
			return s, nil
		}},
		{pipeline.Spec{
			Name:    "rename",
			Summary: "Gives each file a new name from a template; the content is unchanged.",
			Origin:  "built-in",
			Check:   checkRename,
			// Decides from the name and size alone; the bytes pass untouched.
			KeepsContent: true,
			Fields: []pipeline.Field{
				{Name: "name", Type: pipeline.TypeString, Required: true,
					Doc: "The new name. Placeholders: {name} (with directories), {base}, {dir}, {stem}, {ext} (with its dot), {date} (2006-01-02), {time} (150405), {id}, {attr.KEY}. {date} and {time} are the file's modification time in UTC, or the current time for a file without one. The result must be a safe relative name."},
			},
		}, func(_ context.Context, c pipeline.Config) (pipeline.Stage, error) {
			s, err := NewRename(RenameConfig{Name: c.String("name")})
			if err != nil {
				return nil, err
			}
			return s, nil
		}},
		{pipeline.Spec{
			Name:    "attrs",
			Summary: "Sets file attributes from templates, for later stages, names and the source's outcome report; the content is unchanged.",
			Origin:  "built-in",
			Check:   checkAttrs,
			// Sets attributes alone; the bytes pass untouched.
			KeepsContent: true,
			Fields: []pipeline.Field{
				{Name: "set", Type: pipeline.TypeStringMap, Required: true,
					Doc: "Attribute names and their values, as templates with the placeholders of rename's name ({name}, {base}, {dir}, {stem}, {ext}, {date}, {time}, {id}, {attr.KEY}), filled from the file as it enters the stage. " +
						"Later stages and name templates read them as {attr.KEY}. The thru source reports thru.batch_total and thru.batch_failed (whole numbers, failed no more than total) and thru.recipients (codes separated by commas) in the file's flow outcome, and fails a file whose values are wrong before it is delivered."},
			},
		}, func(_ context.Context, c pipeline.Config) (pipeline.Stage, error) {
			s, err := NewAttrs(AttrsConfig{Set: c.StringMap("set")})
			if err != nil {
				return nil, err
			}
			return s, nil
		}},
		{pipeline.Spec{
			Name:    "compress",
			Summary: `Compresses the content with gzip or zstd and appends ".gz" or ".zst" to the name.`,
			Origin:  "built-in",
			Check:   checkCompress,
			Fields: []pipeline.Field{
				{Name: "format", Type: pipeline.TypeString, Default: FormatGzip, Enum: []string{FormatGzip, FormatZstd},
					Doc: "The compression format."},
				{Name: "level", Type: pipeline.TypeInt, Default: 0,
					Doc: "The compression level; 0 is the format's default. gzip: 1 (fastest) to 9 (smallest). zstd: 1 to 22, mapped onto four speeds: 1-2 fastest, 3-5 default, 6-9 better, 10-22 best."},
			},
		}, func(_ context.Context, c pipeline.Config) (pipeline.Stage, error) {
			s, err := NewCompress(CompressConfig{Format: c.String("format"), Level: c.Int("level")})
			if err != nil {
				return nil, err
			}
			return s, nil
		}},
		{pipeline.Spec{
			Name:    "decompress",
			Summary: `Decompresses gzip or zstd content and removes ".gz" or ".zst" from the name.`,
			Origin:  "built-in",
			Fields: []pipeline.Field{
				{Name: "format", Type: pipeline.TypeString, Default: FormatAuto, Enum: []string{FormatAuto, FormatGzip, FormatZstd},
					Doc: "The compression format. auto decides by the extension (.gz, .zst) and, without one, by the first bytes; a file that is neither fails."},
			},
		}, func(_ context.Context, c pipeline.Config) (pipeline.Stage, error) {
			s, err := NewDecompress(DecompressConfig{Format: c.String("format")})
			if err != nil {
				return nil, err
			}
			return s, nil
		}},
	}
}

// Register adds the built-in stages (match, rename, attrs, compress, decompress) to
// r. It fails if one of the names is taken; the stages registered before the
// failure stay registered.
func Register(r *pipeline.Registry) error {
	for _, s := range specs() {
		if err := r.RegisterStage(s.spec, s.new); err != nil {
			return err
		}
	}
	return nil
}
