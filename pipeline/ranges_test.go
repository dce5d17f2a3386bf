package pipeline

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestByteRanges(t *testing.T) {
	var r ByteRanges
	for _, add := range [][2]int64{{10, 5}, {0, 4}, {20, 0}, {4, 6}, {30, 10}, {15, 15}} {
		r = r.Add(add[0], add[1])
	}
	if diff := cmp.Diff(ByteRanges{{0, 40}}, r); diff != "" {
		t.Errorf("ranges (-want +got):\n%s", diff)
	}
	if !r.Covers(40) || r.Covers(41) {
		t.Errorf("Covers(40), Covers(41) = %v, %v; want true, false", r.Covers(40), r.Covers(41))
	}
	holes := ByteRanges{}.Add(0, 4).Add(8, 4)
	if diff := cmp.Diff(ByteRanges{{0, 4}, {8, 12}}, holes); diff != "" || holes.Covers(12) {
		t.Errorf("ranges with a hole: %v, covers 12: %v", holes, holes.Covers(12))
	}
	if !(ByteRanges{}).Covers(0) || (ByteRanges{}).Covers(1) {
		t.Error("nothing covers exactly the empty file")
	}
	if got := (ByteRanges{{0, 1}}).Add(2, math.MaxInt64-2); len(got) != 2 {
		t.Errorf("disjoint ranges merged: %v", got)
	}
}
