package main

import (
	"go/parser"
	"go/token"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/services/orderctl/internal/cli"
)

// commandPaths are the full paths of the tree's commands that run
// something ("outbox stats"), cobra's own help and completion aside.
func commandPaths(c *cobra.Command, prefix string) []string {
	var paths []string
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() || sub.Name() == "help" || sub.Name() == "completion" {
			continue
		}
		if sub.HasAvailableSubCommands() {
			paths = append(paths, commandPaths(sub, prefix+sub.Name()+" ")...)
			continue
		}
		paths = append(paths, prefix+sub.Name())
	}
	return paths
}

// docLine is one line of the package doc's command list: the command,
// alternatives of its last word joined by "|", then its summary.
var docLine = regexp.MustCompile(`^\t([a-z][a-z-]*(?: [a-z][a-z|-]*)?)\s{2,}\S`)

// documentedPaths expands the package doc's command list into full paths.
func documentedPaths(t *testing.T) []string {
	t.Helper()
	files, err := parser.ParseDir(token.NewFileSet(), ".", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	for _, f := range files["main"].Files {
		if f.Doc != nil {
			doc += f.Doc.Text()
		}
	}
	var paths []string
	for _, l := range strings.Split(doc, "\n") {
		m := docLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		group, alternatives, ok := strings.Cut(m[1], " ")
		if !ok {
			paths = append(paths, group)
			continue
		}
		for _, a := range strings.Split(alternatives, "|") {
			paths = append(paths, group+" "+a)
		}
	}
	if len(paths) == 0 {
		t.Fatal("the package doc has no command list")
	}
	return paths
}

// The package doc lists exactly the commands orderctl has, and so does the
// root help: a command added, renamed or removed fails here until the list
// says so.
func TestCommandListsMatchTheTree(t *testing.T) {
	t.Parallel()
	root := cli.NewWithSettings(io.Discard, io.Discard, cli.Settings{})
	tree := commandPaths(root, "")
	slices.Sort(tree)
	if len(tree) < 10 {
		t.Fatalf("only %d commands in the tree: %v", len(tree), tree)
	}
	tests := []struct {
		name  string
		paths func(t *testing.T) []string
	}{
		{name: "package doc", paths: documentedPaths},
		{name: "root help", paths: func(t *testing.T) []string {
			var paths []string
			for _, l := range strings.Split(root.Long, "\n") {
				fields := strings.Fields(l)
				for n := 1; n <= 2 && n <= len(fields); n++ {
					if slices.Contains(tree, strings.Join(fields[:n], " ")) {
						paths = append(paths, strings.Join(fields[:n], " "))
					}
				}
			}
			return paths
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.paths(t)
			slices.Sort(got)
			for _, p := range tree {
				if !slices.Contains(got, p) {
					t.Errorf("%s does not list %q", tt.name, p)
				}
			}
			for _, p := range got {
				if !slices.Contains(tree, p) {
					t.Errorf("%s lists %q, which is no command", tt.name, p)
				}
			}
		})
	}
}
