package flowfile

import (
	"bytes"
	"fmt"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestScratch(t *testing.T) {
	for _, s := range []string{"a: 1\n---\nb: 2\n", "a: 1\n---\n", "a: 1\n--- x\n", "a: 1\n...\n---\n\n  b: 2\n", "a: 1\n---\nb: [\n", "a:\nb: 1\n", "a: {<<: {x: 1}, y: 2}\n", "a: {x: !!merge 1}\n", "? [a]\n: 1\n"} {
		d := yaml.NewDecoder(bytes.NewReader([]byte(s)))
		var n1, n2 yaml.Node
		e1 := d.Decode(&n1)
		e2 := d.Decode(&n2)
		fmt.Printf("%q: %v %v | %v %d:%d\n", s, e1, e2, n2.Kind, n2.Line, n2.Column)
		if len(n2.Content) > 0 {
			fmt.Println("  content", n2.Content[0].Line, n2.Content[0].Column)
		}
		if len(n1.Content) > 0 {
			dump(&n1, "  ")
		}
	}
}

func dump(n *yaml.Node, ind string) {
	fmt.Printf("%s%v tag=%s val=%q %d:%d style=%v\n", ind, n.Kind, n.Tag, n.Value, n.Line, n.Column, n.Style)
	if n.Kind == yaml.AliasNode {
		return
	}
	for _, c := range n.Content {
		dump(c, ind+"  ")
	}
}
