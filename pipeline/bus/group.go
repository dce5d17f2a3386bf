package bus

import (
	"time"
)

// A group carries several small files through the bus as one: one record
// holds their metadata (Group, under GroupKey), one chunk their bytes, one
// task per sink delivers them, and one record per sink (GroupDelivery,
// under GroupDeliveryKey) holds each file's outcome at that sink. Each file keeps
// its own manifest, naming its group (Manifest.Group), so that a file
// offered again is recognised, and status, replay and reruns stay per file.

// GroupKey holds group gid's record.
func GroupKey(gid string) string { return "grp." + gid }

// GroupDeliveryKey holds the delivery record of group gid to sink.
func GroupDeliveryKey(gid, sink string) string { return "gdlv." + gid + "." + sink }

// GroupTask is the data of a delivery task for group gid; a file's task is
// its id, which never starts so.
func GroupTask(gid string) string { return "g:" + gid }

// Group is a group's record.
type Group struct {
	ID      string   `json:"id"`
	Sinks   []string `json:"sinks"`
	Members []Member `json:"members"`
	// Abandoned is set when a run found member manifests naming a group
	// that was never written, and wrote this record first: the run that
	// was writing it then finds the key taken, and its files go their own
	// way.
	Abandoned bool `json:"abandoned,omitempty"`
	// Purged is set once the group's chunk is gone from the bus (just
	// before it is removed): every sink committed every member, or every
	// member that failed somewhere became a file of its own.
	Purged bool `json:"purged,omitempty"`
	// Size is the members' bytes, which travel one after the other as the
	// group's one chunk (ChunkSubject of the group's id) until every sink
	// committed every member.
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

// Member is one file of a group; its bytes are Size bytes at Offset of the
// group's chunk.
type Member struct {
	Offset        int64             `json:"offset"`
	ID            string            `json:"id"`
	Key           string            `json:"key"`
	Name          string            `json:"name"`
	Size          int64             `json:"size"`
	SHA256        string            `json:"sha256"`
	Digests       map[string]string `json:"digests,omitempty"`
	ModTime       time.Time         `json:"mod_time"`
	Attrs         map[string]string `json:"attrs,omitempty"`
	SourceRemoves bool              `json:"source_removes,omitempty"`
}

// Member returns the member with file id id, if any.
func (g Group) Member(id string) (Member, bool) {
	for _, m := range g.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// GroupDelivery is the record of a group's delivery to one sink. A member
// missing from Files is pending.
type GroupDelivery struct {
	Group string `json:"group"`
	Sink  string `json:"sink"`
	// State is DeliveryActive or DeliveryCommitting while an owner works
	// on it, DeliveryPending between attempts, and DeliveryCommitted once
	// every member is final (each member's own state says how).
	State    string                    `json:"state"`
	Files    map[string]MemberDelivery `json:"files,omitempty"`
	Attempts int                       `json:"attempts"`
	Owner    string                    `json:"owner,omitempty"`
	Task     uint64                    `json:"task,omitempty"`
	Updated  time.Time                 `json:"updated"`
}

// MemberDelivery is one member's delivery to the group record's sink.
type MemberDelivery struct {
	State    string `json:"state"`
	Bytes    int64  `json:"bytes,omitempty"`
	Writes   int    `json:"writes,omitempty"` // as Delivery.Writes
	Failures int    `json:"failures,omitempty"`
	Error    string `json:"error,omitempty"`
	// Resume is the member's upload state (Upload.State) as the commit
	// claim recorded it, so that an attempt after a crash resumes that
	// upload (a Thru session it may have committed) instead of making
	// another; nil once the member is final.
	Resume []byte `json:"resume,omitempty"`
}

// Delivery returns member id's delivery as a file's own record would say
// it, for status and outcomes.
func (g GroupDelivery) Delivery(id, name string) Delivery {
	md, ok := g.Files[id]
	if !ok || md.State == "" { // "": only its upload state is recorded
		md.State = DeliveryPending
		if g.State == DeliveryActive || g.State == DeliveryCommitting {
			md.State = g.State
		}
	}
	return Delivery{File: id, Sink: g.Sink, Name: name, State: md.State, Bytes: md.Bytes, Writes: md.Writes, Failures: md.Failures,
		Error: md.Error, Attempts: g.Attempts, Owner: g.Owner, Updated: g.Updated}
}
