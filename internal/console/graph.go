package console

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// EdgeKind says why one state can follow another. The console draws each
// kind with its own line style and label (never by colour alone).
type EdgeKind string

const (
	EdgeNext    EdgeKind = "next"    // Next of a Task, Wait, Pass…
	EdgeChoice  EdgeKind = "choice"  // one of a Choice state's Choices
	EdgeDefault EdgeKind = "default" // a Choice state's Default
	EdgeCatch   EdgeKind = "catch"   // a Catch clause of a Task
)

// Node is a state of the machine, placed on the drawing.
type Node struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Comment string `json:"comment,omitempty"`
	Start   bool   `json:"start,omitempty"`
	End     bool   `json:"end,omitempty"`
	// Retry lists the error names of the state's Retry clauses.
	Retry []string `json:"retry,omitempty"`
	Layer int      `json:"layer"`
	Order int      `json:"order"`
	X     int      `json:"x"`
	Y     int      `json:"y"`
	W     int      `json:"w"`
	H     int      `json:"h"`
}

// Edge is a possible transition, with its SVG path and label position.
type Edge struct {
	From  string   `json:"from"`
	To    string   `json:"to"`
	Kind  EdgeKind `json:"kind"`
	Label string   `json:"label,omitempty"`
	// Back marks an edge that goes up the drawing (the wait loops).
	Back   bool   `json:"back,omitempty"`
	Path   string `json:"path"`
	LabelX int    `json:"label_x"`
	LabelY int    `json:"label_y"`
}

// Graph is a state machine laid out in layers, top to bottom.
type Graph struct {
	Comment string `json:"comment,omitempty"`
	StartAt string `json:"start_at"`
	Nodes   []Node `json:"nodes"`
	Edges   []Edge `json:"edges"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
}

// Drawing metrics (pixels of the SVG's user space).
const (
	nodeHeight   = 40
	minNodeWidth = 150
	charWidth    = 7 // of the 12px monospace-ish label font
	layerGap     = 64
	nodeGap      = 28
	margin       = 24
	backLoopGap  = 36
)

type aslState struct {
	Type    string `json:"Type"`
	Comment string `json:"Comment"`
	Next    string `json:"Next"`
	End     bool   `json:"End"`
	Default string `json:"Default"`
	Choices []struct {
		Next string `json:"Next"`
	} `json:"Choices"`
	Catch []struct {
		ErrorEquals []string `json:"ErrorEquals"`
		Next        string   `json:"Next"`
	} `json:"Catch"`
	Retry []struct {
		ErrorEquals []string `json:"ErrorEquals"`
	} `json:"Retry"`
}

type aslMachine struct {
	Comment string              `json:"Comment"`
	StartAt string              `json:"StartAt"`
	States  map[string]aslState `json:"States"`
}

// ParseASL reads an Amazon States Language definition and lays it out.
// Only the top-level States are drawn (Sluice's machines have no Map or
// Parallel branches).
func ParseASL(definition []byte) (Graph, error) {
	var m aslMachine
	if err := json.Unmarshal(definition, &m); err != nil {
		return Graph{}, fmt.Errorf("state machine definition: %w", err)
	}
	if _, ok := m.States[m.StartAt]; !ok {
		return Graph{}, fmt.Errorf("state machine definition: StartAt %q is not a state", m.StartAt)
	}
	// Choice conditions as labels need the raw rules: decode them again.
	var raw struct {
		States map[string]struct {
			Choices []map[string]any `json:"Choices"`
		} `json:"States"`
	}
	_ = json.Unmarshal(definition, &raw)

	g := Graph{Comment: m.Comment, StartAt: m.StartAt}
	names := stateOrder(m)
	for _, name := range names {
		st := m.States[name]
		n := Node{Name: name, Type: st.Type, Comment: st.Comment, Start: name == m.StartAt,
			End: st.End || st.Type == "Succeed" || st.Type == "Fail"}
		for _, r := range st.Retry {
			n.Retry = append(n.Retry, r.ErrorEquals...)
		}
		g.Nodes = append(g.Nodes, n)
		add := func(to string, kind EdgeKind, label string) error {
			if _, ok := m.States[to]; !ok {
				return fmt.Errorf("state machine definition: %s refers to unknown state %q", name, to)
			}
			for i := range g.Edges { // one drawn edge per (from, to, kind)
				if e := &g.Edges[i]; e.From == name && e.To == to && e.Kind == kind {
					e.Label += ", " + label
					return nil
				}
			}
			g.Edges = append(g.Edges, Edge{From: name, To: to, Kind: kind, Label: label})
			return nil
		}
		var err error
		if st.Next != "" {
			err = add(st.Next, EdgeNext, "")
		}
		for i, c := range st.Choices {
			if err == nil {
				label := ""
				if i < len(raw.States[name].Choices) {
					label = choiceLabel(raw.States[name].Choices[i])
				}
				err = add(c.Next, EdgeChoice, label)
			}
		}
		if st.Default != "" && err == nil {
			err = add(st.Default, EdgeDefault, "Default")
		}
		for _, c := range st.Catch {
			if err == nil {
				err = add(c.Next, EdgeCatch, "Catch "+strings.Join(c.ErrorEquals, " | "))
			}
		}
		if err != nil {
			return Graph{}, err
		}
	}
	layout(&g)
	return g, nil
}

// stateOrder lists the states depth-first from StartAt, following Next,
// the Choices, Default and then the Catch targets (so the happy path comes
// first), then any unreachable state by name.
func stateOrder(m aslMachine) []string {
	seen := map[string]bool{}
	var out []string
	var visit func(string)
	visit = func(name string) {
		st, ok := m.States[name]
		if !ok || seen[name] {
			return
		}
		seen[name] = true
		out = append(out, name)
		visit(st.Next)
		for _, c := range st.Choices {
			visit(c.Next)
		}
		visit(st.Default)
		for _, c := range st.Catch {
			visit(c.Next)
		}
	}
	visit(m.StartAt)
	rest := make([]string, 0)
	for name := range m.States {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	for _, name := range rest {
		visit(name)
	}
	return out
}

// choiceLabel renders a Choice rule as a short condition, e.g. "$.done == true".
func choiceLabel(rule map[string]any) string {
	v, _ := rule["Variable"].(string)
	ops := map[string]string{"Equals": "==", "GreaterThan": ">", "GreaterThanEquals": ">=", "LessThan": "<", "LessThanEquals": "<="}
	keys := make([]string, 0, len(rule))
	for k := range rule {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "Variable" || k == "Next" {
			continue
		}
		val := rule[k]
		switch {
		case k == "IsPresent":
			return fmt.Sprintf("%s present: %v", v, val)
		case k == "And" || k == "Or" || k == "Not":
			return k + " rule"
		}
		for suffix, op := range ops {
			if strings.HasSuffix(k, suffix) && !strings.HasSuffix(k, "Path") {
				b, _ := json.Marshal(val)
				return fmt.Sprintf("%s %s %s", v, op, b)
			}
		}
		return fmt.Sprintf("%s %s", v, k)
	}
	return v
}

// layout places the nodes: longest-path layering over the graph with its
// back edges (found depth-first from StartAt) reversed, then an order
// within each layer by weighted barycenter (the happy path's edges weigh
// more than Catch edges, so it stays a straight column), then x positions
// that follow the parents while keeping nodes apart.
func layout(g *Graph) {
	index := map[string]int{}
	for i, n := range g.Nodes {
		index[n.Name] = i
		g.Nodes[i].W = max(minNodeWidth, len(n.Name)*charWidth+28)
		g.Nodes[i].H = nodeHeight
	}
	out := make([][]int, len(g.Nodes)) // edge indexes by source
	for i, e := range g.Edges {
		out[index[e.From]] = append(out[index[e.From]], i)
	}

	// Back edges: to a node on the depth-first stack.
	const (
		unvisited = iota
		onStack
		done
	)
	mark := make([]int, len(g.Nodes))
	var dfs func(int)
	dfs = func(v int) {
		mark[v] = onStack
		for _, ei := range out[v] {
			w := index[g.Edges[ei].To]
			switch mark[w] {
			case unvisited:
				dfs(w)
			case onStack:
				g.Edges[ei].Back = true
			}
		}
		mark[v] = done
	}
	for v := range g.Nodes { // nodes are in depth-first order from StartAt
		if mark[v] == unvisited {
			dfs(v)
		}
	}

	// Longest-path layering over the forward edges (a DAG now), in
	// topological order.
	indeg := make([]int, len(g.Nodes))
	for _, e := range g.Edges {
		if !e.Back && e.From != e.To {
			indeg[index[e.To]]++
		}
	}
	queue := []int{}
	for v := range g.Nodes {
		if indeg[v] == 0 {
			queue = append(queue, v)
		}
	}
	layerOf := make([]int, len(g.Nodes))
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, ei := range out[v] {
			e := g.Edges[ei]
			if e.Back || e.From == e.To {
				continue
			}
			w := index[e.To]
			layerOf[w] = max(layerOf[w], layerOf[v]+1)
			if indeg[w]--; indeg[w] == 0 {
				queue = append(queue, w)
			}
		}
	}
	layers := 0
	for v := range g.Nodes {
		g.Nodes[v].Layer = layerOf[v]
		layers = max(layers, layerOf[v]+1)
	}
	byLayer := make([][]int, layers)
	for v := range g.Nodes {
		byLayer[layerOf[v]] = append(byLayer[layerOf[v]], v)
	}

	// Parents of each node with a weight: happy-path edges 1, Catch edges 0.05.
	type parent struct {
		v      int
		weight float64
	}
	parents := make([][]parent, len(g.Nodes))
	for _, e := range g.Edges {
		if e.Back || e.From == e.To {
			continue
		}
		w := 1.0
		if e.Kind == EdgeCatch {
			w = 0.05
		}
		parents[index[e.To]] = append(parents[index[e.To]], parent{index[e.From], w})
	}

	// x: the first layer centred at 0, each next layer at its weighted
	// barycenter, in that order, pushed apart to keep the gap.
	x := make([]float64, len(g.Nodes))
	for li, nodes := range byLayer {
		for i, v := range nodes {
			if li == 0 || len(parents[v]) == 0 {
				x[v] = float64(i) * float64(minNodeWidth+nodeGap)
				continue
			}
			var sum, wsum float64
			for _, p := range parents[v] {
				sum += x[p.v] * p.weight
				wsum += p.weight
			}
			x[v] = sum / wsum
		}
		sort.SliceStable(nodes, func(a, b int) bool { return x[nodes[a]] < x[nodes[b]] })
		// Push apart left to right around the layer's mean position.
		for i := 1; i < len(nodes); i++ {
			a, b := nodes[i-1], nodes[i]
			minDist := float64(g.Nodes[a].W+g.Nodes[b].W)/2 + nodeGap
			if x[b]-x[a] < minDist {
				x[b] = x[a] + minDist
			}
		}
		for i, v := range nodes {
			g.Nodes[v].Order = i
		}
	}

	// To pixels: shift so the leftmost edge is at the margin.
	minX, maxX := 0.0, 0.0
	for v, n := range g.Nodes {
		l, r := x[v]-float64(n.W)/2, x[v]+float64(n.W)/2
		if v == 0 || l < minX {
			minX = l
		}
		if v == 0 || r > maxX {
			maxX = r
		}
	}
	for v := range g.Nodes {
		n := &g.Nodes[v]
		n.X = int(x[v]-minX) + margin - n.W/2
		n.Y = margin + n.Layer*(nodeHeight+layerGap)
	}
	g.Width = int(maxX-minX) + 2*margin
	g.Height = margin*2 + layers*nodeHeight + (layers-1)*layerGap

	// Edge paths: forward edges as a vertical S-curve from the bottom of the
	// source to the top of the target; back edges leave and re-enter on the
	// right side, around the nodes between.
	backs := 0
	for i := range g.Edges {
		e := &g.Edges[i]
		s, t := g.Nodes[index[e.From]], g.Nodes[index[e.To]]
		if e.Back || e.From == e.To {
			backs++
			sx, sy := s.X+s.W, s.Y+s.H/2
			tx, ty := t.X+t.W, t.Y+t.H/2
			ox := max(sx, tx) + backLoopGap*backs
			for _, n := range g.Nodes { // clear every node on the way
				if n.Layer >= t.Layer && n.Layer <= s.Layer && n.X+n.W+backLoopGap > ox && n.X < ox {
					ox = n.X + n.W + backLoopGap
				}
			}
			e.Path = fmt.Sprintf("M %d %d C %d %d, %d %d, %d %d", sx, sy, ox, sy, ox, ty, tx, ty)
			e.LabelX, e.LabelY = ox-4, (sy+ty)/2
			g.Width = max(g.Width, ox+margin)
			continue
		}
		sx, sy := s.X+s.W/2, s.Y+s.H
		tx, ty := t.X+t.W/2, t.Y
		dy := max((ty-sy)/2, 20)
		e.Path = fmt.Sprintf("M %d %d C %d %d, %d %d, %d %d", sx, sy, sx, sy+dy, tx, ty-dy, tx, ty)
		e.LabelX, e.LabelY = (sx+tx)/2, (sy+ty)/2
	}
}
