package pipeline

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/bmatcuk/doublestar/v4"
)

// Defaults of the fields RemoteSourceFields and RemoteSinkFields declare.
const (
	DefaultPollInterval = 10 * time.Second
	DefaultStableFor    = 2 * time.Second
	DefaultTempName     = ".{base}.{id}.tmp"
)

// Values of the "after" field of RemoteSourceFields.
const (
	AfterLeave  = "leave"
	AfterDelete = "delete"
	AfterMove   = "move"
)

// DefaultIgnore returns the default ignore patterns of a polled source:
// names of files that are usually still being uploaded, and hidden files.
func DefaultIgnore() []string { return []string{"*.tmp", ".*", "*.part", "*.filepart", "~*"} }

// RemoteSourceFields are the fields of a source that polls a directory on
// a server (SFTP, FTPS): which files it takes, when, and what it does with
// them after delivery. A Poller applies the timing ones.
func RemoteSourceFields() []Field {
	return []Field{
		{
			Name: "include",
			Type: TypeStrings,
			Doc: `Glob patterns matched against each file's slash-separated name relative to ` +
				`directory (doublestar syntax: *, ?, [a-z], {a,b} and **). A file is taken only if ` +
				`it matches one of them. Empty: every file.`,
		},
		{
			Name: "exclude",
			Type: TypeStrings,
			Doc: `Glob patterns, as for include, for files to leave alone. A pattern that matches ` +
				`a directory's relative name skips everything beneath it.`,
		},
		{
			Name:    "ignore",
			Type:    TypeStrings,
			Default: DefaultIgnore(),
			Doc: `Glob patterns matched against the base name of files and directories that are ` +
				`still being uploaded or are hidden; they are never taken. Give an empty list to take them too.`,
		},
		{
			Name:    "recursive",
			Type:    TypeBool,
			Default: false,
			Doc:     "Descend into subdirectories (one listing per directory and poll). Symbolic links are not followed.",
		},
		{
			Name:    "watch",
			Type:    TypeBool,
			Default: true,
			Doc:     "Keep polling the directory every poll_interval. false: take the files present at start, then finish.",
		},
		{
			Name:    "poll_interval",
			Type:    TypeDuration,
			Default: DefaultPollInterval,
			Doc:     "How often the directory is listed in watch mode. 0 uses the default.",
		},
		{
			Name:    "stable_for",
			Type:    TypeDuration,
			Default: DefaultStableFor,
			Doc: `A file is taken only once two listings at least this far apart show the same ` +
				`size and modification time, so files still being uploaded are not read half-way. ` +
				`0 takes files as soon as they are listed.`,
		},
		{
			Name: "min_age",
			Type: TypeDuration,
			Doc: `A file whose modification time is at least this old is taken at the first ` +
				`listing, without waiting for stable_for. Compared with the runner's clock, so ` +
				`allow for clock skew. 0: not used.`,
		},
		{
			Name:    "after",
			Type:    TypeString,
			Default: AfterLeave,
			Enum:    []string{AfterDelete, AfterMove, AfterLeave},
			Doc: `What to do with a file once every sink has it: delete it, move it to ` +
				`archive_dir, or leave it (this process does not take it again unless it changes). ` +
				`Files that failed or were skipped are always left.`,
		},
		{
			Name: "archive_dir",
			Type: TypeString,
			Doc: `Remote directory that delivered files are moved to when after is "move", keeping ` +
				`their relative names; created if missing. A taken name gets a suffix: ` +
				`report.csv, report-1.csv... It may lie inside directory; it is never read.`,
		},
	}
}

// RemoteSinkFields are the naming fields of a sink that uploads to a
// directory on a server under a temporary name and renames the file once
// complete.
func RemoteSinkFields() []Field {
	return []Field{
		{
			Name:    "name",
			Type:    TypeString,
			Default: "{name}",
			Doc: `Template for each file's name relative to directory. Placeholders: {name} {base} ` +
				`{dir} {stem} {ext} {date} {time} {id} {attr.KEY}. Names that would leave ` +
				`directory are refused; missing subdirectories are created.`,
		},
		{
			Name:    "temp_name",
			Type:    TypeString,
			Default: DefaultTempName,
			Doc: `Template for the temporary name a file is uploaded under, in the same directory as ` +
				`its final name; the file is renamed once complete. Servers such as Thru start ` +
				`processing only on that rename, and their endpoint names the temporary pattern. ` +
				`Placeholders apply to the final name: {base} {stem} {ext}, and {id}, a short ` +
				`hash unique to the file and its target. No slashes.`,
		},
		{
			Name: "trigger",
			Type: TypeString,
			Doc: `Template for an empty trigger file written next to each file once it has its ` +
				`final name, such as "{name}.done"; placeholders as for name, applied to the ` +
				`final name. Empty: none.`,
		},
	}
}

// Polling is what RemoteSourceFields configure; its tags name them (see
// Decode). Zero values are taken as they are (no recursion, no ignore
// patterns, no watching, no stability wait) except where noted.
type Polling struct {
	// Include and Exclude are doublestar globs matched against names
	// relative to the directory; an Exclude matching a directory skips it.
	Include []string `config:"include"`
	Exclude []string `config:"exclude"`
	// Ignore lists globs matched against base names never taken.
	Ignore []string `config:"ignore"`
	// Recursive descends into subdirectories.
	Recursive bool `config:"recursive"`
	// Watch keeps polling; without it the source ends once the files
	// present at start were offered.
	Watch bool `config:"watch"`
	// PollInterval between listings in watch mode; 0: DefaultPollInterval.
	PollInterval time.Duration `config:"poll_interval"`
	// StableFor is how far apart two listings showing the same size and
	// modification time must be before a file is taken; 0 takes files at
	// once.
	StableFor time.Duration `config:"stable_for"`
	// MinAge, when set, takes a file whose modification time is at least
	// this old at its first listing.
	MinAge time.Duration `config:"min_age"`
	// After is AfterLeave (the default for ""), AfterDelete or AfterMove.
	After string `config:"after"`
	// ArchiveDir receives delivered files when After is AfterMove.
	ArchiveDir string `config:"archive_dir"`
}

// Check validates p and fills in defaults; connector names the connector
// in errors.
func (p *Polling) Check(connector string) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Connector: connector, Field: field, Err: fmt.Errorf(format, args...)}
	}
	for _, list := range []struct {
		field    string
		patterns []string
	}{{"include", p.Include}, {"exclude", p.Exclude}, {"ignore", p.Ignore}} {
		for _, pat := range list.patterns {
			if pat == "" || !doublestar.ValidatePattern(pat) {
				return bad(list.field, "invalid glob pattern %q", pat)
			}
		}
	}
	if p.PollInterval <= 0 {
		p.PollInterval = DefaultPollInterval
	}
	if p.StableFor < 0 {
		return bad("stable_for", "must not be negative")
	}
	if p.MinAge < 0 {
		return bad("min_age", "must not be negative")
	}
	switch p.After {
	case "":
		p.After = AfterLeave
	case AfterLeave, AfterDelete:
	case AfterMove:
		if p.ArchiveDir == "" {
			return bad("archive_dir", `required when after is "move"`)
		}
	default:
		return bad("after", "want one of delete, move, leave, got %q", p.After)
	}
	return nil
}

// Poller returns a Poller with p's timing.
func (p Polling) Poller() Poller {
	return Poller{Watch: p.Watch, PollInterval: p.PollInterval, StableFor: p.StableFor, MinAge: p.MinAge}
}

// Wanted applies the ignore, include and exclude patterns to a file: rel
// is its name relative to the directory, base its last element.
func (p Polling) Wanted(rel, base string) bool {
	return !MatchAny(p.Ignore, base) && Included(p.Include, p.Exclude, rel)
}

// Descend reports whether a recursive listing enters the subdirectory rel
// (base its last element).
func (p Polling) Descend(rel, base string) bool {
	return p.Recursive && !MatchAny(p.Ignore, base) && !MatchAny(p.Exclude, rel)
}

// Values of a remote sink's overwrite policy (Naming.Overwrite).
const (
	OverwriteReplace = "replace"
	OverwriteSkip    = "skip"
	OverwriteFail    = "fail"
)

// Naming is how a sink that uploads to a server's directory names what it
// writes: the fields of RemoteSinkFields and an overwrite policy. Zero
// values mean the defaults.
type Naming struct {
	// Name is the name template relative to the directory; "" means "{name}".
	Name string `config:"name"`
	// TempName is the template of the temporary name, in the target's
	// directory; "" means DefaultTempName.
	TempName string `config:"temp_name"`
	// Overwrite is OverwriteReplace (the default for ""), OverwriteSkip or
	// OverwriteFail. Its field is the connector's to declare.
	Overwrite string `config:"overwrite"`
	// Trigger, when set, is the template of an empty file written next to
	// each file after it got its final name.
	Trigger string `config:"trigger"`
}

// Check validates n and fills in defaults; connector names the connector
// in errors.
func (n *Naming) Check(connector string) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Connector: connector, Field: field, Err: fmt.Errorf(format, args...)}
	}
	if n.Name == "" {
		n.Name = "{name}"
	}
	if err := CheckTemplate(n.Name); err != nil {
		return bad("name", "%w", err)
	}
	if n.TempName == "" {
		n.TempName = DefaultTempName
	}
	if _, err := TempName(n.TempName, File{}, "x.csv", "0123456789ab", time.Time{}); err != nil {
		return bad("temp_name", "%w", err)
	}
	if n.Trigger != "" {
		if err := CheckTemplate(n.Trigger); err != nil {
			return bad("trigger", "%w", err)
		}
	}
	switch n.Overwrite {
	case "":
		n.Overwrite = OverwriteReplace
	case OverwriteReplace, OverwriteSkip, OverwriteFail:
	default:
		return bad("overwrite", "want one of replace, skip, fail, got %q", n.Overwrite)
	}
	return nil
}

// Target expands the name template for f: the clean name relative to the
// sink's directory.
func (n Naming) Target(f File, now time.Time) (string, error) {
	name, err := ExpandName(n.Name, f, now)
	if err != nil {
		return "", Permanent(fmt.Errorf("naming %q: %w", f.Name, err))
	}
	return CleanName(name)
}

// TempPath is the slash-separated path of the temporary file for f next to
// target. Its {id} is a hash of the file's ID and the target, so that two
// sinks writing one file to different names in one directory stay apart;
// fresh (or a file without an ID) makes it random, for a restart after the
// temporary file was lost.
func (n Naming) TempPath(f File, target string, fresh bool, now time.Time) (string, error) {
	sum := sha256.Sum256([]byte(f.ID + "\x00" + target))
	id := hex.EncodeToString(sum[:6])
	if f.ID == "" || fresh {
		b := make([]byte, 6)
		rand.Read(b)
		id = hex.EncodeToString(b)
	}
	name, err := TempName(n.TempName, f, path.Base(target), id, now)
	if err != nil {
		return "", Permanent(fmt.Errorf("naming the temporary file of %q: %w", f.Name, err))
	}
	return path.Join(path.Dir(target), name), nil
}

// TriggerPath is the slash-separated path of the trigger file of the file
// whose name relative to dir is rel, or "" when there is no trigger.
func (n Naming) TriggerPath(dir, rel string, now time.Time) (string, error) {
	if n.Trigger == "" {
		return "", nil
	}
	name, err := ExpandName(n.Trigger, File{Name: rel}, now)
	if err == nil {
		name, err = CleanName(name)
	}
	if err == nil && name == rel {
		err = fmt.Errorf("trigger template %q gives the file's own name", n.Trigger)
	}
	if err != nil {
		return "", Permanent(fmt.Errorf("naming the trigger file of %q: %w", rel, err))
	}
	return path.Join(dir, name), nil
}

// RemoteEntry is one entry of a directory listed on a server, as Polling's
// Walk sorts it.
type RemoteEntry struct {
	Name    string // base name
	Dir     bool
	Regular bool // a plain file; entries that are neither are passed over
	Size    int64
	ModTime time.Time
}

// Walk sorts the entries of one listed directory of a remote source: abs is
// its path on the server, rel its name relative to the source directory
// ("" for that directory itself). Files the patterns want, with names a
// sink can take safely, are appended to found under names relative to the
// source directory; each subdirectory a recursive walk enters (never the
// archive directory, given by its absolute path) is passed to descend, in
// listing order, which lists it in turn. An error of descend ends the walk.
func (p Polling) Walk(abs, rel, archive string, entries []RemoteEntry, found *[]Listed, descend func(abs, rel string) error) error {
	for _, e := range entries {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		childRel, childAbs := e.Name, path.Join(abs, e.Name)
		if rel != "" {
			childRel = rel + "/" + e.Name
		}
		switch {
		case e.Dir:
			if childAbs != archive && p.Descend(childRel, e.Name) {
				if err := descend(childAbs, childRel); err != nil {
					return err
				}
			}
		case e.Regular:
			if !p.Wanted(childRel, e.Name) {
				continue
			}
			if _, err := CleanName(childRel); err != nil {
				continue // a name no sink could take safely
			}
			*found = append(*found, Listed{Name: childRel, Size: e.Size, ModTime: e.ModTime})
		}
	}
	return nil
}

// ApplyAfter is the Ack of a remote source's file called name whose after
// action is after: nothing unless o.Status is Passed and after is not
// AfterLeave. Otherwise present reports whether the file is still there as
// it was offered (false when an earlier Ack dealt with it, an error when it
// changed: then nothing is applied), and apply applies the action first to
// the file's companions (see Companions), then to the file if present.
// Companions go first, so that a crash between leaves the file to be
// offered, and acked, again.
func ApplyAfter(o Outcome, name, after string, present func() (bool, error), apply func(name string) error) error {
	if o.Status != Passed || after == AfterLeave {
		return nil
	}
	names, err := Companions(o, name)
	if err != nil {
		return err
	}
	here, err := present()
	if err != nil {
		return err
	}
	if here {
		names = append(names, name)
	}
	for _, n := range names {
		if err := apply(n); err != nil {
			return err
		}
	}
	return nil
}

// RemoteDirectoryField is the "directory" field of a connector that reads
// or writes a directory on a server.
func RemoteDirectoryField() Field {
	return Field{
		Name:     "directory",
		Type:     TypeString,
		Required: true,
		Doc: `Remote directory, absolute or relative to the login directory. It must exist: ` +
			`the connector never creates it.`,
	}
}

// OverwriteField is the "overwrite" field of a sink that uploads to a
// server's directory (Naming.Overwrite); doc says how the connector applies
// each policy.
func OverwriteField(doc string) Field {
	return Field{
		Name:    "overwrite",
		Type:    TypeString,
		Default: OverwriteReplace,
		Enum:    []string{OverwriteReplace, OverwriteSkip, OverwriteFail},
		Doc:     doc,
	}
}

// RemoteConnector describes the source and the sink of a connector that
// reads and writes a directory on a server (SFTP, FTPS): the fields both
// have and what sets each apart. Its methods build their specs and
// register them.
type RemoteConnector struct {
	Name string
	// SourceSummary and SinkSummary are the specs' one-line summaries.
	SourceSummary, SinkSummary string
	// SourceOptions and SinkOptions are what the fields decode into.
	SourceOptions, SinkOptions any
	// ConnFields, how both reach the server, come first in each spec.
	ConnFields []Field
	// SinkFields follow RemoteSinkFields in the sink's spec: its
	// OverwriteField and part size, say.
	SinkFields []Field
	NewSource  SourceConstructor
	NewSink    SinkConstructor
}

// SourceSpec is the source's spec: ConnFields, then RemoteSourceFields.
func (c RemoteConnector) SourceSpec() Spec {
	return Spec{
		Name:    c.Name,
		Summary: c.SourceSummary,
		Origin:  "built-in",
		Options: c.SourceOptions,
		Fields:  slices.Concat(c.ConnFields, RemoteSourceFields()),
	}
}

// SinkSpec is the sink's spec: ConnFields, RemoteSinkFields, then
// SinkFields.
func (c RemoteConnector) SinkSpec() Spec {
	return Spec{
		Name:    c.Name,
		Summary: c.SinkSummary,
		Origin:  "built-in",
		Options: c.SinkOptions,
		Fields:  slices.Concat(c.ConnFields, RemoteSinkFields(), c.SinkFields),
	}
}

// Register adds the source and the sink to r.
func (c RemoteConnector) Register(r *Registry) error {
	if err := r.RegisterSource(c.SourceSpec(), c.NewSource); err != nil {
		return err
	}
	return r.RegisterSink(c.SinkSpec(), c.NewSink)
}
