package pipeline

import "testing"

func TestIncluded(t *testing.T) {
	for _, tc := range []struct {
		include, exclude []string
		name             string
		want             bool
	}{
		{nil, nil, "a/b.csv", true},
		{[]string{"*.csv"}, nil, "a/b.csv", false}, // * stops at a slash
		{[]string{"**/*.csv"}, nil, "a/b.csv", true},
		{[]string{"**/*.csv"}, []string{"a/**"}, "a/b.csv", false},
		{nil, []string{"**/.*"}, "a/.hidden", false},
		{nil, []string{"**/.*"}, ".hidden", false}, // ** matches no directory too
		{[]string{"{x,y}.txt"}, nil, "y.txt", true},
	} {
		if got := Included(tc.include, tc.exclude, tc.name); got != tc.want {
			t.Errorf("Included(%q, %q, %q) = %v, want %v", tc.include, tc.exclude, tc.name, got, tc.want)
		}
	}
}
