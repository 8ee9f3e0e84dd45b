package console

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParseASLRealMachines lays out each of statemachine/*.asl.json and
// checks the drawing's structure: every state a node, every transition an
// edge of the right kind, the wait loop as the only back edge, the start
// state on top, no two nodes overlapping.
func TestParseASLRealMachines(t *testing.T) {
	for _, tc := range []struct {
		file  string
		start string
		// edges that must be there, "from>to:kind"
		want []string
		// the back edges, exactly
		backs []string
	}{
		{"suspend", "MarkSuspending", []string{
			"MarkSuspending>RequestSuspend:next", "WaitUntilSuspended>WaitUntilSuspendedResult:next",
			"WaitUntilSuspendedResult>MarkSuspended:choice", "WaitUntilSuspendedResult>ContinueAsNew:choice",
			"WaitUntilSuspendedResult>BackOffBeforeNextSuspendCheck:default", "MarkSuspending>RecordError:catch",
			"RequestSuspend>Superseded:catch", "RecordError>IsAlreadyStopped:next", "IsAlreadyStopped>Deprovision:default",
			"IsAlreadyStopped>NothingToDo:choice", "Deprovision>DeprovisionFailed:catch", "MarkStopped>Stopped:next",
		}, []string{"BackOffBeforeNextSuspendCheck>WaitUntilSuspended"}},
		{"start", "MarkProvisioning", []string{
			"MarkProvisioning>Provision:next", "WaitUntilReadyResult>BackOffBeforeNextReadinessCheck:default",
			"WaitUntilReadyResult>MarkProvisioned:choice", "MarkProvisioned>Running:next", "Provision>RecordError:catch",
		}, []string{"BackOffBeforeNextReadinessCheck>WaitUntilReady"}},
		{"stop", "MarkStopping", []string{
			"MarkStopping>IsAlreadyStopped:next", "IsAlreadyStopped>Deprovision:default", "Deprovision>MarkStopped:next",
			"MarkStopped>DeprovisionFailed:catch",
		}, nil},
		{"clear", "ClearStorage", []string{"ClearStorage>MarkStorageCleared:next", "MarkStorageCleared>Cleared:next", "ClearStorage>ClearFailed:catch"}, nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			def, err := os.ReadFile(filepath.Join("..", "..", "statemachine", tc.file+".asl.json"))
			if err != nil {
				t.Fatal(err)
			}
			g, err := ParseASL(def)
			if err != nil {
				t.Fatal(err)
			}
			if g.StartAt != tc.start || g.Nodes[0].Name != tc.start || !g.Nodes[0].Start || g.Nodes[0].Layer != 0 {
				t.Fatalf("start: %q, first node %+v", g.StartAt, g.Nodes[0])
			}
			have := map[string]bool{}
			var backs []string
			for _, e := range g.Edges {
				have[e.From+">"+e.To+":"+string(e.Kind)] = true
				if e.Back {
					backs = append(backs, e.From+">"+e.To)
				}
				if e.Path == "" || !strings.HasPrefix(e.Path, "M ") {
					t.Errorf("edge %s>%s has no path", e.From, e.To)
				}
				if (e.Kind == EdgeCatch && !strings.HasPrefix(e.Label, "Catch ")) || (e.Kind == EdgeChoice && e.Label == "") || (e.Kind == EdgeDefault && e.Label != "Default") {
					t.Errorf("edge %s>%s %s label %q", e.From, e.To, e.Kind, e.Label)
				}
			}
			for _, w := range tc.want {
				if !have[w] {
					t.Errorf("missing edge %s", w)
				}
			}
			if !slices.Equal(backs, tc.backs) {
				t.Errorf("back edges %v, want %v", backs, tc.backs)
			}
			layer := map[string]int{}
			for _, n := range g.Nodes {
				layer[n.Name] = n.Layer
				if n.X < 0 || n.Y < 0 || n.X+n.W > g.Width || n.Y+n.H > g.Height {
					t.Errorf("node %s at %d,%d size %dx%d outside %dx%d", n.Name, n.X, n.Y, n.W, n.H, g.Width, g.Height)
				}
			}
			// Forward edges go down: longest-path layering.
			for _, e := range g.Edges {
				if !e.Back && layer[e.To] <= layer[e.From] {
					t.Errorf("forward edge %s>%s from layer %d to %d", e.From, e.To, layer[e.From], layer[e.To])
				}
			}
			for i, a := range g.Nodes {
				for _, b := range g.Nodes[i+1:] {
					if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
						t.Errorf("nodes %s and %s overlap", a.Name, b.Name)
					}
				}
			}
		})
	}
}

func TestParseASLChoiceLabelsAndErrors(t *testing.T) {
	g, err := ParseASL([]byte(`{"StartAt":"C","States":{
		"C":{"Type":"Choice","Choices":[{"Variable":"$.done","BooleanEquals":true,"Next":"A"},{"Variable":"$.n","NumericGreaterThan":3,"Next":"A"}],"Default":"B"},
		"A":{"Type":"Pass","End":true},"B":{"Type":"Fail"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, e := range g.Edges {
		labels = append(labels, string(e.Kind)+" "+e.Label)
	}
	// Two rules to the same target are one drawn edge with both labels.
	if want := []string{"choice $.done == true, $.n > 3", "default Default"}; !slices.Equal(labels, want) {
		t.Fatalf("labels %q, want %q", labels, want)
	}
	for _, bad := range []string{`{`, `{"StartAt":"X","States":{}}`, `{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Nowhere"}}}`} {
		if _, err := ParseASL([]byte(bad)); err == nil {
			t.Errorf("ParseASL(%s): no error", bad)
		}
	}
}
