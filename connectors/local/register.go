package local

import (
	"context"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// Register adds the "local" source and the "local" sink to r.
func Register(r *pipeline.Registry) error {
	if err := r.RegisterSource(sourceSpec(), newSourceFromConfig); err != nil {
		return err
	}
	return r.RegisterSink(sinkSpec(), newSinkFromConfig)
}

func sourceSpec() pipeline.Spec {
	return pipeline.Spec{
		Name:    "local",
		Summary: "Reads files from a local directory, optionally watching it for new files.",
		Origin:  "built-in",
		Options: SourceConfig{},
		Check:   pipeline.CheckOptions(checkSource),
		Place:   pipeline.PlaceOptions(sourcePlace),
		Rereads: rereads,
		Fields: []pipeline.Field{
			{
				Name:     "path",
				Type:     pipeline.TypeString,
				Required: true,
				Doc:      "Directory to read files from. It must exist.",
			},
			{
				Name: "include",
				Type: pipeline.TypeStrings,
				Doc: `Glob patterns matched against each file's slash-separated name relative to path ` +
					`(doublestar syntax: *, ?, [a-z], {a,b} and ** for any number of directories). ` +
					`A file is taken only if it matches one of them. "*.csv" matches at the top only, ` +
					`"**/*.csv" at any depth. Empty: every file.`,
			},
			{
				Name: "exclude",
				Type: pipeline.TypeStrings,
				Doc: `Glob patterns, as for include, for files to leave alone. A pattern that ` +
					`matches a directory's relative name skips everything beneath it.`,
			},
			{
				Name:    "recursive",
				Type:    pipeline.TypeBool,
				Default: true,
				Doc:     "Descend into subdirectories. Symbolic links to directories are never followed.",
			},
			{
				Name:    "ignore",
				Type:    pipeline.TypeStrings,
				Default: DefaultIgnore(),
				Doc: `Glob patterns matched against the base name of files and directories that are ` +
					`still being written or are hidden; matching entries are never taken. ` +
					`Give an empty list to take them too.`,
			},
			{
				Name:    "watch",
				Type:    pipeline.TypeBool,
				Default: true,
				Doc: `Keep watching the directory for new files (file system notifications plus a ` +
					`periodic rescan). false: take the files present at start, then finish.`,
			},
			{
				Name:    "rescan",
				Type:    pipeline.TypeDuration,
				Default: DefaultRescan,
				Doc: `How often the whole directory is listed again in watch mode. Notifications ` +
					`only make new files show up sooner; the rescan finds everything. 0 uses the default.`,
			},
			{
				Name:    "stable_for",
				Type:    pipeline.TypeDuration,
				Default: DefaultStableFor,
				Doc: `A file is taken only once its size and modification time have not changed ` +
					`for this long, so files still being written are not read half-way. 0 takes ` +
					`files as soon as they are seen. Not used when trigger is set.`,
			},
			{
				Name: "trigger",
				Type: pipeline.TypeString,
				Doc: `A suffix such as ".done". When set, a file is taken only once "<name><suffix>" ` +
					`exists next to it, however recently it changed. Trigger files are never taken ` +
					`themselves; they are deleted or moved together with their file.`,
			},
			{
				Name:    "after",
				Type:    pipeline.TypeString,
				Default: AfterLeave,
				Enum:    []string{AfterDelete, AfterMove, AfterLeave},
				Doc: `What to do with a file once every sink has it: delete it, move it to ` +
					`archive_dir, or leave it (it is not taken again by this process unless it ` +
					`changes). Files that failed or were skipped are always left.`,
			},
			{
				Name: "shared",
				Type: pipeline.TypeBool,
				Doc: `Every runner of the flow sees the same files at this path (a shared mount). ` +
					`Needed for bus.payload reference when runners on several hosts share the bus: ` +
					`they then read a file's bytes from here instead of from the bus.`,
			},
			{
				Name: "archive_dir",
				Type: pipeline.TypeString,
				Doc: `Directory that delivered files are moved to when after is "move", keeping ` +
					`their relative names; created if missing. A name that is taken gets a ` +
					`suffix: report.csv, report-1.csv... It may lie inside path; it is never read.`,
			},
		},
	}
}

func sinkSpec() pipeline.Spec {
	return pipeline.Spec{
		Name:    "local",
		Summary: "Writes files to a local directory, atomically and with parts written in parallel.",
		Origin:  "built-in",
		Options: SinkConfig{},
		Check:   pipeline.CheckOptions(checkSink),
		Place:   pipeline.PlaceOptions(sinkPlace),
		Fields: []pipeline.Field{
			{
				Name:     "path",
				Type:     pipeline.TypeString,
				Required: true,
				Doc:      "Directory to write files to; created if missing.",
			},
			{
				Name:    "name",
				Type:    pipeline.TypeString,
				Default: "{name}",
				Doc: `Template for each file's name relative to path. Placeholders: {name} {base} ` +
					`{dir} {stem} {ext} {date} {time} {id} {attr.KEY}. Names that would leave ` +
					`path are refused.`,
			},
			{
				Name:    "overwrite",
				Type:    pipeline.TypeString,
				Default: OverwriteReplace,
				Enum:    []string{OverwriteReplace, OverwriteSkip, OverwriteFail, OverwriteRename},
				Doc: `When the target exists: replace it, skip the file (it counts as delivered), ` +
					`fail the delivery, or rename the new file (report-1.csv, report-2.csv...).`,
			},
			{
				Name:    "fsync",
				Type:    pipeline.TypeBool,
				Default: false,
				Doc: `Flush every part, the final file and its directories to stable storage before ` +
					`the file counts as delivered, so a power cut loses nothing that was reported written. ` +
					`Slower. Without it, a source with "after: delete" or "move" still removes a file only ` +
					`once the sink's file system has been synced (one sync serves many files).`,
			},
			{
				Name:    "part_size",
				Type:    pipeline.TypeSize,
				Default: "8MiB",
				Doc: `How much of a file one write covers; parts are written concurrently, up to ` +
					`the sink's parallelism in the flow. 0 uses the default; at most 1GiB.`,
			},
		},
	}
}

func newSourceFromConfig(ctx context.Context, c pipeline.Config) (pipeline.Source, error) {
	cfg, err := pipeline.Decode[SourceConfig](c)
	if err != nil {
		return nil, err
	}
	return NewSource(ctx, cfg)
}

// rereads is the source spec's Rereads: every host can read a file again
// when they all see the directory.
func rereads(c pipeline.Config) bool {
	cfg, err := pipeline.Decode[SourceConfig](c)
	return err == nil && cfg.Shared
}

func newSinkFromConfig(_ context.Context, c pipeline.Config) (pipeline.Sink, error) {
	cfg, err := pipeline.Decode[SinkConfig](c)
	if err != nil {
		return nil, err
	}
	return NewSink(cfg)
}

// Defaults of the source and sink settings.
const (
	DefaultRescan    = 10 * time.Second
	DefaultStableFor = 2 * time.Second
	DefaultPartSize  = 8 << 20
)

// DefaultIgnore returns the default ignore patterns: names of files that are
// usually still being written, and hidden files.
func DefaultIgnore() []string { return []string{"*.tmp", ".*", "*.part", "~*"} }

// Values of SourceConfig.After.
const (
	AfterLeave  = "leave"
	AfterDelete = "delete"
	AfterMove   = "move"
)

// Values of SinkConfig.Overwrite.
const (
	OverwriteReplace = "replace"
	OverwriteSkip    = "skip"
	OverwriteFail    = "fail"
	OverwriteRename  = "rename"
)
