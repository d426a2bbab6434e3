package tests

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// whereDoc is the map of the code a newcomer looks for first.
const whereDoc = "docs/design/README.md"

// codeSpan is a Markdown code span.
var codeSpan = regexp.MustCompile("`([^`]+)`")

// docReference is one row of whereDoc: a Go file and the functions, methods
// or types it should declare.
type docReference struct {
	line    int
	file    string
	symbols []string
}

// docReferences reads every table row of doc whose second cell is one Go
// file and whose third cell names symbols in it.
func docReferences(doc string) []docReference {
	var refs []docReference
	for i, l := range strings.Split(doc, "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(l), "|"), "|")
		if len(cells) != 3 {
			continue
		}
		file := codeSpan.FindAllStringSubmatch(cells[1], -1)
		if len(file) != 1 || !strings.HasSuffix(file[0][1], ".go") {
			continue
		}
		ref := docReference{line: i + 1, file: file[0][1]}
		for _, m := range codeSpan.FindAllStringSubmatch(cells[2], -1) {
			ref.symbols = append(ref.symbols, m[1])
		}
		refs = append(refs, ref)
	}
	return refs
}

// declared lists what a Go file declares: "Func", "Type.Method", "Type",
// "Var" and "Const" names.
func declared(f *ast.File) []string {
	var names []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				names = append(names, d.Name.Name)
				continue
			}
			t := d.Recv.List[0].Type
			if star, ok := t.(*ast.StarExpr); ok {
				t = star.X
			}
			if idx, ok := t.(*ast.IndexExpr); ok { // a generic receiver
				t = idx.X
			}
			if id, ok := t.(*ast.Ident); ok {
				names = append(names, id.Name+"."+d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					names = append(names, s.Name.Name)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	return names
}

func TestDocReferencesParse(t *testing.T) {
	t.Parallel()
	doc := "| what | file | function |\n|---|---|---|\n" +
		"| shard | `shared/shard/topology.go` | `Topology.PlaceRequest`, `Route` |\n" +
		"| prose with `code` | not a file | `X` |\n" +
		"| two files | `a.go` and `b.go` | `X` |\n"
	got := docReferences(doc)
	if len(got) != 1 || got[0].file != "shared/shard/topology.go" || !slices.Equal(got[0].symbols, []string{"Topology.PlaceRequest", "Route"}) {
		t.Fatalf("docReferences = %+v, want the one row of topology.go with its two symbols", got)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "x.go",
		"package x\ntype T[E any] struct{}\nfunc (t *T[E]) M() {}\nfunc (T[E]) N() {}\nfunc F() {}\nvar V, W int\nconst C = 1\n", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := declared(f), []string{"T", "T.M", "T.N", "F", "V", "W", "C"}; !slices.Equal(got, want) {
		t.Fatalf("declared = %v, want %v", got, want)
	}
}

// Every file and function the "where things are" map names exists, so a
// rename or a move fails here until the map follows it.
func TestWhereThingsAreNamesRealCode(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, whereDoc))
	if err != nil {
		t.Fatal(err)
	}
	refs := docReferences(string(doc))
	if len(refs) < 20 {
		t.Fatalf("%s names %d files; the tables of decisions, the chain and the retry policies are missing", whereDoc, len(refs))
	}
	for _, ref := range refs {
		t.Run(ref.file+":"+strings.Join(ref.symbols, ","), func(t *testing.T) {
			t.Parallel()
			if len(ref.symbols) == 0 {
				t.Fatalf("%s:%d names %s but no function in it", whereDoc, ref.line, ref.file)
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, ref.file), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatalf("%s:%d: %v", whereDoc, ref.line, err)
			}
			names := declared(f)
			for _, s := range ref.symbols {
				if !slices.Contains(names, s) {
					t.Errorf("%s:%d: %s declares no %s", whereDoc, ref.line, ref.file, s)
				}
			}
		})
	}
}

// packageDoc matches the first sentence of a package comment: "Package
// name ..." for a library, "Command name ..." for a main package.
func packageDoc(f *ast.File, dir string) (string, bool) {
	if f.Doc == nil {
		return "", false
	}
	text := f.Doc.Text()
	if f.Name.Name == "main" {
		return text, strings.HasPrefix(text, "Command "+filepath.Base(dir)+" ")
	}
	return text, strings.HasPrefix(text, "Package "+f.Name.Name+" ")
}

// Every package of the services and the shared module says what its one
// job is in a package comment, which go doc shows first.
func TestEveryPackageHasADocComment(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string][]string{}
	for _, top := range []string{"services", "shared", "loadtest", "migrations"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if d.IsDir() && (rel == filepath.Join("shared", "gen") || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				dirs[filepath.Dir(rel)] = append(dirs[filepath.Dir(rel)], path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(dirs) < 40 {
		t.Fatalf("found only %d packages", len(dirs))
	}
	for dir, files := range dirs {
		documented := 0
		for _, path := range files {
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if f.Doc == nil {
				continue
			}
			if text, ok := packageDoc(f, dir); ok {
				documented++
			} else {
				t.Errorf("%s: its package comment does not start with the package's name: %.60q", path, text)
			}
		}
		if documented != 1 {
			t.Errorf("%s: %d files carry a package comment, want exactly one", dir, documented)
		}
	}
}
