package oci

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

const fuzzDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// FuzzManifest feeds arbitrary manifest JSON (media types, artifact types,
// annotations chosen by whoever pushed the image) to kindOf and planLayers.
// Whatever the manifest says, a planned layer has a sha256 digest and a
// non-negative size, every path it names is a clean path inside DEST, a file
// layer has a path, and no mode bit beyond the permissions survives
// (a ModelPack file-metadata annotation cannot ask for setuid).
//
//	go test -run '^$' -fuzz '^FuzzManifest$' -fuzztime 60s ./pkg/provider/oci
func FuzzManifest(f *testing.F) {
	layer := func(mt string, ann map[string]string) map[string]any {
		return map[string]any{"mediaType": mt, "digest": fuzzDigest, "size": 10, "annotations": ann}
	}
	seed := func(cfgType, artifactType string, layers ...map[string]any) {
		b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "artifactType": artifactType,
			"config": map[string]any{"mediaType": cfgType, "digest": fuzzDigest, "size": 2}, "layers": layers})
		f.Add(b)
	}
	seed(mtOCIImageConfig, "", layer("application/vnd.oci.image.layer.v1.tar+gzip", nil))
	seed("application/vnd.oci.empty.v1+json", "", layer("application/octet-stream", map[string]string{annTitle: "../../etc/passwd"}))
	seed("application/vnd.oci.empty.v1+json", "", layer("application/octet-stream", map[string]string{annTitle: "/abs/path"}))
	seed("application/vnd.oci.empty.v1+json", "", layer("application/vnd.oci.image.layer.v1.tar", map[string]string{annTitle: "dir", annUnpack: "true"}))
	seed(mtModelPackConfig, mtModelPackManifest,
		layer("application/vnd.cncf.model.weight.v1.raw", map[string]string{annFilepath: "w/model.safetensors",
			annFileMetadata: `{"mode":3565,"mtime":"2026-01-01T00:00:00Z"}`}),
		layer("application/vnd.cncf.model.weight.v1.tar", map[string]string{annFilepath: "a/../../x"}))
	seed(mtModelPackConfig, "", layer("application/vnd.cnai.model.weight.v1.raw", map[string]string{annFilepathCNAI: ".storage-initializer/j"}))
	seed(mtKitConfig, "", layer("application/vnd.kitops.modelkit.model.v1.tar", nil))
	f.Add([]byte(`{"layers":[{"digest":"sha256:zz","size":-1}]}`))
	f.Add([]byte(`{"config":{"mediaType":"` + mtOCIImageConfig + `"},"layers":[{"digest":"` + fuzzDigest + `","size":-5}]}`))
	f.Add([]byte(`{"config":{"mediaType":"` + mtOCIImageConfig + `"},"layers":[{"digest":"` + fuzzDigest + `","size":4611686018427387904}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m manifest
		if json.Unmarshal(data, &m) != nil {
			return
		}
		kind, err := kindOf(&m)
		if err != nil {
			return
		}
		layers, err := planLayers(kind, &m)
		if err != nil {
			return
		}
		if len(layers) != len(m.Layers) {
			t.Fatalf("%d layers planned for %d in the manifest", len(layers), len(m.Layers))
		}
		var total int64
		for _, l := range layers {
			total += l.Size
			if l.Whiteouts != (kind == KindModelcar) {
				t.Fatalf("layer %d of a %s planned with whiteouts=%v: only image layers have whiteouts", l.Index, kind, l.Whiteouts)
			}
		}
		if total < 0 || total > maxManifestBytes {
			t.Fatalf("layers planned adding up to %d bytes", total)
		}
		for _, l := range layers {
			if checkDigest(l.Digest) != nil || l.Size < 0 || l.Size > maxLayerSize {
				t.Fatalf("layer %d planned with digest %q, size %d", l.Index, l.Digest, l.Size)
			}
			if l.Mode&^fs.ModePerm != 0 {
				t.Fatalf("layer %d keeps mode bits %v", l.Index, l.Mode)
			}
			switch l.Action {
			case ActionSkip:
				continue
			case ActionFile:
				if l.Path == "" {
					t.Fatalf("file layer %d without a path", l.Index)
				}
			}
			if l.Path != "" {
				if clean, err := engine.CleanRel(l.Path); err != nil || clean != l.Path {
					t.Fatalf("layer %d: path %q is not a clean path inside DEST (%q, %v)", l.Index, l.Path, clean, err)
				}
			}
		}
	})
}

// FuzzParseRef checks oci:// and oci+fetch:// URIs: no panic, and an
// accepted reference names a registry and a repository.
//
//	go test -run '^$' -fuzz '^FuzzParseRef$' -fuzztime 60s ./pkg/provider/oci
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"oci://127.0.0.1:5000/models/llama:v1", "oci+fetch://ghcr.io/org/m@" + fuzzDigest,
		"oci://", "oci://UPPER/Case:tag", "oci://host/../../x:1", "oci://host/repo@sha256:short", "s3://b/k",
		"oci://host:99999/r:t", "oci://user:pw@host/r:t", "oci://host/r:t?x=1#f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c := config{getenv: func(string) string { return "" }}
		ref, err := parseRef(src, &c)
		if err != nil {
			return
		}
		repo := ref.Context()
		if repo.RegistryStr() == "" || repo.RepositoryStr() == "" {
			t.Fatalf("parseRef(%q) = %v without a registry or repository", src, ref)
		}
		if _, err := name.ParseReference(ref.Name()); err != nil {
			t.Fatalf("parseRef(%q) = %q, which does not parse again: %v", src, ref.Name(), err)
		}
	})
}

// fuzzPassword is planted in every fuzzed docker config; no error may
// carry it.
const fuzzPassword = "PW-never-printed-5d2a"

// FuzzDockerConfig feeds pull-secret JSON (config.json and the legacy
// .dockercfg) to parseDockerConfig and lookup: no panic, and no error
// message holds the password.
//
//	go test -run '^$' -fuzz '^FuzzDockerConfig$' -fuzztime 60s ./pkg/provider/oci
func FuzzDockerConfig(f *testing.F) {
	for _, s := range []string{`{"auths":{"reg.example:5000":{"auth":"dXNlcjpQVw=="}}}`,
		`{"reg.example":{"username":"u","password":"PW"}}`, `{"auths":{"https://index.docker.io/v1/":{"auth":"!!!"}}}`,
		`{"auths":{"reg/ns":{"username":"u","password":"PW"},"reg":{"identitytoken":"PW"}}}`, `{"auths":[1,2]}`, `{"auths":{"x":{"auth":PW}}}`} {
		f.Add(s, "reg.example:5000/ns/model")
	}
	f.Fuzz(func(t *testing.T, cfgJSON, repoName string) {
		data := []byte(strings.ReplaceAll(cfgJSON, "PW", fuzzPassword))
		cfg, err := parseDockerConfig(data)
		if err != nil {
			if strings.Contains(err.Error(), fuzzPassword) {
				t.Fatalf("error leaks the password: %v", err)
			}
			return
		}
		repo, err := name.NewRepository(repoName)
		if err != nil {
			return
		}
		if a, ok := cfg.lookup(repo); ok && a == nil {
			t.Fatal("lookup found credentials but returned no authenticator")
		}
	})
}
