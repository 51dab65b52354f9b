package extract

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"testing"
)

func TestWhiteoutsApplied(t *testing.T) {
	dst, root := newDst(t)
	lower := mkTar(t,
		file("models/a", "a"), file("models/keep", "k"),
		file("models/b/old", "o"), file("models/c/x", "x"),
		file("models/.storage-initializer-not", "n"),
	)
	upper := mkTar(t,
		file("models/.wh.a", ""),
		file("models/b/new", "n"), // written before the opaque marker: must survive it
		file("models/b/.wh..wh..opq", ""),
		file("models/.wh.c", ""),
		file("models/.wh.never-existed", ""),
		file("etc/.wh.passwd", ""), // outside the kept folder: ignored
	)
	if _, err := extractTar(t, root, lower, Options{Prefix: "models", Whiteouts: true}); err != nil {
		t.Fatal(err)
	}
	st, err := extractTar(t, root, upper, Options{Prefix: "models", Whiteouts: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Whiteouts != 5 {
		t.Fatalf("whiteouts %d", st.Whiteouts)
	}
	equalLines(t, listing(t, dst), []string{"d b", "f .storage-initializer-not n", "f b/new n", "f keep k"})
}

func TestWhiteoutOfPrefixEmptiesDestination(t *testing.T) {
	for _, wh := range []string{".wh.models", ".wh..wh..opq", "models/.wh..wh..opq"} {
		t.Run(wh, func(t *testing.T) {
			dst, root := newDst(t)
			if err := os.MkdirAll(filepath.Join(dst, ".storage-initializer"), 0o755); err != nil {
				t.Fatal(err)
			}
			if _, err := extractTar(t, root, mkTar(t, file("models/a", "a")), Options{Prefix: "models", Whiteouts: true}); err != nil {
				t.Fatal(err)
			}
			up := mkTar(t, file(wh, ""), file("models/b", "b"))
			if _, err := extractTar(t, root, up, Options{Prefix: "models", Whiteouts: true}); err != nil {
				t.Fatal(err)
			}
			equalLines(t, listing(t, dst), []string{"d .storage-initializer", "f b b"})
		})
	}
}

// TestApplyLayerMatchesInPlace stacks random layers two ways — in place with
// Whiteouts, and extracted separately with KeepWhiteouts then merged with
// ApplyLayer — and expects identical trees.
func TestApplyLayerMatchesInPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"models/a", "models/b", "models/d/a", "models/d/e/f", "models/x", "top"}
	for iter := range 40 {
		var layers [][]byte
		var desc string
		for range 1 + rng.IntN(4) {
			var ents []ent
			for range rng.IntN(6) {
				n := names[rng.IntN(len(names))]
				switch rng.IntN(7) {
				case 0, 1:
					ents = append(ents, file(n, fmt.Sprint(rng.IntN(100))))
				case 2:
					ents = append(ents, dirEnt(n))
				case 3:
					ents = append(ents, file(path.Join(path.Dir(n), ".wh."+path.Base(n)), ""))
				case 4:
					ents = append(ents, file(path.Join(n, ".wh..wh..opq"), ""))
				case 5:
					ents = append(ents, symlinkEnt(n, "a"))
				case 6:
					ents = append(ents, file(".wh.models", ""))
				}
			}
			layers = append(layers, mkTar(t, ents...))
			desc += fmt.Sprintf("layer %v\n", ents)
		}
		inPlace, root1 := newDst(t)
		var err1 error
		for _, l := range layers {
			if _, err1 = extractTar(t, root1, l, Options{Prefix: "models", Whiteouts: true}); err1 != nil {
				break
			}
		}
		merged, root2 := newDst(t)
		var err2 error
		for i, l := range layers {
			dir := fmt.Sprintf(".storage-initializer/l%d", i)
			if err := root2.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			sub, err := root2.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			_, err2 = extractTar(t, sub, l, Options{Prefix: "models", KeepWhiteouts: true})
			sub.Close()
			if err2 != nil {
				break
			}
		}
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("iteration %d: in place %v, layered %v", iter, err1, err2)
		}
		if err1 != nil {
			continue // e.g. a file where a later entry needs a folder
		}
		for i := range layers {
			if err := ApplyLayer(context.Background(), root2, fmt.Sprintf(".storage-initializer/l%d", i), "."); err != nil {
				t.Fatalf("iteration %d: %v", iter, err)
			}
		}
		if err := root2.Remove(".storage-initializer"); err != nil {
			t.Fatalf("iteration %d: layer folders left behind: %v", iter, err)
		}
		if got, want := listing(t, merged), listing(t, inPlace); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("iteration %d:\n%s got %q\nwant %q", iter, desc, got, want)
		}
	}
}

// stackLayers extracts each layer into a folder of its own (with
// KeepWhiteouts as given) and merges them in order, as the OCI provider
// does, returning the merged tree.
func stackLayers(t *testing.T, keepWhiteouts bool, layers ...[]byte) []string {
	t.Helper()
	dst, root := newDst(t)
	for i, l := range layers {
		dir := fmt.Sprintf(".storage-initializer/l%d", i)
		if err := root.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		sub, err := root.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = extractTar(t, sub, l, Options{KeepWhiteouts: keepWhiteouts})
		sub.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range layers {
		if err := ApplyLayer(context.Background(), root, fmt.Sprintf(".storage-initializer/l%d", i), "."); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.Remove(".storage-initializer"); err != nil {
		t.Fatal(err)
	}
	return listing(t, dst)
}

// TestArtifactWhiteoutNamesAreFiles: ModelPack, KitOps and ORAS layers are
// not image layers; their files named .wh.* (empty or not) are ordinary
// files, and merging them removes nothing.
func TestArtifactWhiteoutNamesAreFiles(t *testing.T) {
	lower := mkTar(t, file("x", "x"), file("y", "y"), file("d/z", "z"))
	upper := mkTar(t, file(".wh.x", "not a whiteout"), file(".wh.y", ""), file("d/.wh..wh..opq", ""))
	equalLines(t, stackLayers(t, false, lower, upper), []string{
		"d d", "f .wh.x not a whiteout", "f .wh.y ", "f d/.wh..wh..opq ", "f d/z z", "f x x", "f y y",
	})
	// The same layers as image layers: the whiteouts apply.
	equalLines(t, stackLayers(t, true, lower, upper), []string{"d d"})
}
