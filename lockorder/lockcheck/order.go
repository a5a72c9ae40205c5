package lockcheck

import (
	"fmt"
	"go/token"
	"slices"
	"sort"
	"strings"
)

// orderEdge is the first place where lock class to was taken while class
// from was held.
type orderEdge struct {
	from, to string
	pos      token.Pos // the acquisition of to (or the call leading to it)
	heldPos  token.Pos // where from was acquired
	via      string
}

// addEdges records "to was acquired while each lock of held was held".
// Only classes declared in this package take part: a field of another
// package's type names no role this package controls.
func (c *checker) addEdges(held map[string]holding, to lockRef, pos token.Pos, via string) {
	if to.class == "" || !to.local {
		return
	}
	for _, h := range held {
		if h.ref.class == "" || !h.ref.local || h.ref.class == to.class {
			continue
		}
		k := [2]string{h.ref.class, to.class}
		if _, ok := c.edges[k]; !ok {
			c.edges[k] = orderEdge{from: h.ref.class, to: to.class, pos: pos, heldPos: h.pos, via: via}
		}
	}
}

// reportInversions reports every cycle in the lock order graph once, at
// each of its edges, naming the other edges' sites.
func (c *checker) reportInversions() {
	out := map[string][]string{}
	for k := range c.edges {
		out[k[0]] = append(out[k[0]], k[1])
	}
	for _, v := range out {
		slices.Sort(v)
	}
	done := map[string]bool{}
	keys := make([][2]string, 0, len(c.edges))
	for k := range c.edges {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c.edges[keys[i]].pos < c.edges[keys[j]].pos })
	for _, k := range keys {
		path := c.shortestPath(out, k[1], k[0])
		if path == nil {
			continue
		}
		cycle := append([]string{k[0]}, path...) // k[0] -> k[1] -> ... -> k[0]
		sig := slices.Clone(cycle[:len(cycle)-1])
		slices.Sort(sig)
		if done[strings.Join(sig, ",")] {
			continue
		}
		done[strings.Join(sig, ",")] = true
		c.reportCycle(cycle)
	}
}

func (c *checker) shortestPath(out map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == to {
			var path []string
			for ; n != ""; n = prev[n] {
				path = append([]string{n}, path...)
			}
			return path
		}
		for _, m := range out[n] {
			if _, seen := prev[m]; !seen {
				prev[m] = n
				queue = append(queue, m)
			}
		}
	}
	return nil
}

func (c *checker) reportCycle(cycle []string) {
	edges := make([]orderEdge, len(cycle)-1)
	for i := range edges {
		edges[i] = c.edges[[2]string{cycle[i], cycle[i+1]}]
	}
	for i, e := range edges {
		var others []string
		for j := 1; j < len(edges); j++ {
			o := edges[(i+j)%len(edges)]
			others = append(others, fmt.Sprintf("%s then %s at %s", o.from, o.to, c.where(o.pos, e.pos)))
		}
		via := ""
		if e.via != "" {
			via = " (in " + e.via + ")"
		}
		c.report(e.pos, "lock order inversion: %s acquired%s while %s is held (locked at %s), but %s: goroutines taking both orders deadlock",
			e.to, via, e.from, c.where(e.heldPos, e.pos), strings.Join(others, ", "))
	}
}
