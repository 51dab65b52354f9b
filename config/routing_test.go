// Package config_test checks the KServe manifests in config/ the way KServe
// 0.20 reads them: which ClusterStorageContainer (and so which image) every
// kind of KServe URI is sent to.
//
// KServe's rules (pkg/apis/serving/v1alpha1/storage_container_types.go and
// pkg/webhook/admission/pod/storage_initializer_injector.go): a container
// supports a URI when one of its supportedUriFormats matches, `prefix` by
// strings.HasPrefix, else `regex` by regexp.MatchString (unanchored); the
// webhook takes the first enabled container of the wanted workloadType in
// list order, which comes from an informer cache and is not defined; no
// match falls back to the inferenceservice-config ConfigMap's image. So the
// only safe configuration is one where no URI matches two containers, and
// that is what these tests demand.
package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/storage-initializer/storage-initializer/pkg/provider/azblob"
)

const (
	initContainer = "initContainer"
	downloadJob   = "localModelDownloadJob"
	// fallback names the image of the inferenceservice-config ConfigMap, which
	// a URI no container claims gets.
	fallback = "(inferenceservice-config image)"
)

type uriFormat struct {
	Prefix string `yaml:"prefix"`
	Regex  string `yaml:"regex"`
}

type csc struct {
	File     string
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Disabled *bool `yaml:"disabled"`
	Spec     struct {
		WorkloadType string `yaml:"workloadType"`
		Container    struct {
			Name  string `yaml:"name"`
			Image string `yaml:"image"`
		} `yaml:"container"`
		SupportedURIFormats []uriFormat `yaml:"supportedUriFormats"`
	} `yaml:"spec"`
}

func (c csc) name() string { return c.Metadata.Name }

func (c csc) workloadType() string {
	if c.Spec.WorkloadType == "" {
		return initContainer // the CRD's default
	}
	return c.Spec.WorkloadType
}

// supports is StorageContainerSpec.IsStorageUriSupported.
func (c csc) supports(t *testing.T, uri string) bool {
	t.Helper()
	for _, f := range c.Spec.SupportedURIFormats {
		if f.Prefix != "" {
			if strings.HasPrefix(uri, f.Prefix) {
				return true
			}
		} else if f.Regex != "" {
			ok, err := regexp.MatchString(f.Regex, uri)
			require.NoError(t, err, "%s: regex %q", c.File, f.Regex)
			if ok {
				return true
			}
		}
	}
	return false
}

// manifests holds every object of config/ by kind.
type manifests struct {
	cscs map[string]csc // by file base path without .yaml, e.g. "clusterstoragecontainer", "canary/clusterstoragecontainer"
	docs []map[string]any
}

func load(t *testing.T) manifests {
	t.Helper()
	m := manifests{cscs: map[string]csc{}}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return err
			}
			var doc map[string]any
			if err := node.Decode(&doc); err != nil {
				return err
			}
			doc["#file"] = path
			m.docs = append(m.docs, doc)
			if doc["kind"] != "ClusterStorageContainer" {
				continue
			}
			var c csc
			if err := node.Decode(&c); err != nil {
				return err
			}
			c.File = path
			key := strings.TrimSuffix(path, ".yaml")
			_, dup := m.cscs[key]
			require.False(t, dup, "%s holds two ClusterStorageContainers", path)
			m.cscs[key] = c
		}
		return nil
	})
	require.NoError(t, err)
	require.Contains(t, m.cscs, "clusterstoragecontainer")
	require.Contains(t, m.cscs, "default-without-overlap")
	return m
}

// route returns the containers of workloadType among cs that claim uri, and
// what the webhook would pick in the given order (fallback when none).
func route(t *testing.T, cs []csc, workloadType, uri string) (claimants []string, picked string) {
	t.Helper()
	picked = fallback
	for _, c := range cs {
		if c.Disabled != nil && *c.Disabled || c.workloadType() != workloadType || !c.supports(t, uri) {
			continue
		}
		if len(claimants) == 0 {
			picked = c.name()
		}
		claimants = append(claimants, c.name())
	}
	return claimants, picked
}

// The URIs KServe 0.20 knows, and who must serve them once
// clusterstoragecontainer.yaml and default-without-overlap.yaml are
// installed. "ours" and "kserve" are the two containers.
var kserveURIs = []struct {
	uri, want, why string
}{
	{"s3://models/sklearn/iris", "ours", "S3 folder"},
	{"s3://models/sklearn/iris/model.joblib", "ours", "S3 exact object"},
	{"s3://models", "ours", "whole bucket"},
	{"oci://registry.example.com/models/llm:v1", "ours", "modelcar off"},
	{"oci+fetch://registry.example.com/models/llm@sha256:0123", "ours", "KServe 0.20 oci+fetch"},
	{"pvc://claim/models/llm", "ours", "PVC (KServe mounts it without an initializer)"},
	{"http://minio.storage:9000/models/model.bin", "ours", "plain http file"},
	{"http://acct.blob.core.windows.net/c/model.bin", "ours", "http is never Azure in KServe (its Azure regexes are https)"},
	{"http://git.example.com/org/repo.git", "ours", "http is never git in KServe (its git regex is https)"},
	{"https://example.com/models/model.tar.gz", "ours", "https archive"},
	{"https://huggingface.co/org/m/resolve/main/model.safetensors", "ours", "https file"},
	{"https://github.com/org/repo/releases/download/v1/model.onnx", "ours", "https file on a git host"},
	{"https://raw.githubusercontent.com/org/repo/main/model.onnx", "ours", "contains .git but does not end in it"},
	{"https://models.example.net/m.bin", "ours", ".net host that is not Azure"},
	{"https://cdn.azureedge.net/m.bin", "ours", "Azure CDN is not Azure Storage"},
	{"https://minio.local:9443/b/model.bin", "ours", "host with port"},
	{"https://10.0.0.7/model.bin", "ours", "IPv4 literal"},
	{"https://[fd00::7]:8443/model.bin", "ours", "IPv6 literal"},
	{"https://example.com/file.bin#sha256=00ff", "ours", "expected digest in the fragment"},
	{"https://bucket.s3.amazonaws.com/m.bin?X-Amz-Signature=ab12", "ours", "presigned URL"},
	{"hf://org/model", "ours", "Hugging Face (also LLMInferenceService's usual model URI)"},
	{"hf://org/model:main", "ours", "Hugging Face with revision"},
	{"hf://org/model/onnx:v1", "ours", "Hugging Face subfolder (storage-initializer's extension)"},
	{"modelscope://org/model", "ours", "ModelScope (KServe 0.20)"},
	{"modelscope://org/model:v1.0", "ours", "ModelScope with revision"},
	{"https://github.com/org/repo.git", "kserve", "git clone (KServe >= 0.17)"},
	{"https://github.com/org/repo.git/", "kserve", "git clone, trailing slash"},
	{"https://gitlab.example.com/group/sub/repo.git", "kserve", "git clone, nested group"},
	{"https://acct.blob.core.windows.net/container/model", "ours", "Azure Blob"},
	{"https://acct.blob.core.windows.net/container/model/weights.bin?sv=2024-05-04&sig=abc%3D", "ours", "Azure Blob, SAS in the query"},
	{"https://acct.blob.core.windows.net/container", "ours", "Azure Blob, whole container"},
	{"https://ACCT1.blob.core.windows.net/container/model", "ours", "Azure Blob, account name in capitals"},
	{"https://acct.z12.blob.storage.azure.net/container/model", "ours", "Azure Blob, DNS zone endpoint"},
	{"https://acct.blob.core.windows.net/container/repo.git", "kserve", "a .git path on Azure Blob: KServe's git route, which its Python reads as a blob"},
	{"https://a.b.blob.core.windows.net/container/model", "kserve", "not an account name before the Blob domain"},
	{"https://user@acct.blob.core.windows.net/container/model", "kserve", "user info before the Blob host"},
	{"https://acct.z3.z12.blob.storage.azure.net/container/model", "kserve", "not an account name before the zone endpoint"},
	{"https://acct.file.core.windows.net/share/model", "kserve", "Azure File"},
	{"https://acct.z3.file.storage.azure.net/share/model", "kserve", "Azure File, DNS zone endpoint"},
	{"hdfs://namenode:8020/models/m", "kserve", "HDFS"},
	{"webhdfs://namenode:9870/models/m", "kserve", "WebHDFS"},
	{"gs://bucket/models/m", "ours", "GCS folder"},
	{"gs://bucket/models/m/model.bin", "ours", "GCS exact object"},
	{"gs://bucket", "ours", "GCS whole bucket"},
	// Other Azure service hosts: storage-initializer leaves all of
	// *.windows.net and *.azure.net alone, KServe's container claims only
	// the Blob and File forms its Python code knows; the ConfigMap image
	// (KServe's, which treats these as plain https) gets them, as before.
	{"https://acct.dfs.core.windows.net/fs/model", fallback, "ADLS Gen2 endpoint"},
}

func TestRoutingNoOverlap(t *testing.T) {
	m := load(t)
	ours, kserve := m.cscs["clusterstoragecontainer"], m.cscs["default-without-overlap"]
	names := map[string]string{"ours": ours.name(), "kserve": kserve.name(), fallback: fallback}
	images := map[string]string{ours.name(): ours.Spec.Container.Image, kserve.name(): kserve.Spec.Container.Image}
	require.True(t, strings.HasPrefix(kserve.Spec.Container.Image, "kserve/storage-initializer:"), kserve.Spec.Container.Image)
	require.True(t, strings.HasPrefix(ours.Spec.Container.Image, "ghcr.io/storage-initializer/"), ours.Spec.Container.Image)

	// Every initContainer container that can be auto-matched: the canary
	// and node-cache ones are included, they must not steal any URI here.
	var all []csc
	for _, c := range m.cscs {
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b csc) int { return strings.Compare(a.name(), b.name()) })
	reversed := slices.Clone(all)
	slices.Reverse(reversed)

	for _, u := range kserveURIs {
		claimants, first := route(t, all, initContainer, u.uri)
		_, last := route(t, reversed, initContainer, u.uri)
		assert.LessOrEqual(t, len(claimants), 1, "%s (%s) is claimed by %v: the webhook would pick one at random", u.uri, u.why, claimants)
		assert.Equal(t, names[u.want], first, "%s (%s) goes to %s (image %s)", u.uri, u.why, first, images[first])
		assert.Equal(t, first, last, "%s: the route depends on list order", u.uri)
	}
}

// KServe's stock default (config/storagecontainers/default.yaml, 0.20)
// claims s3://, hf://, modelscope:// and every http(s) URI: installed beside
// clusterstoragecontainer.yaml, those URIs would go to either image. That is
// why default-without-overlap.yaml replaces it.
func TestStockDefaultOverlaps(t *testing.T) {
	m := load(t)
	var stock csc
	stock.Metadata.Name = "default"
	stock.File = "kserve config/storagecontainers/default.yaml"
	for _, p := range []string{"gs://", "s3://", "hdfs://", "hf://", "modelscope://", "webhdfs://"} {
		stock.Spec.SupportedURIFormats = append(stock.Spec.SupportedURIFormats, uriFormat{Prefix: p})
	}
	for _, r := range []string{`https://(.+?).blob.core.windows.net/(.+)`, `https://(.+?).file.core.windows.net/(.+)`, `https?://(.+)/(.+)`} {
		stock.Spec.SupportedURIFormats = append(stock.Spec.SupportedURIFormats, uriFormat{Regex: r})
	}
	cs := []csc{m.cscs["clusterstoragecontainer"], stock}
	for _, uri := range []string{"s3://models/iris", "https://example.com/m.bin", "http://h/m.bin", "hf://org/m", "modelscope://org/m"} {
		claimants, _ := route(t, cs, initContainer, uri)
		assert.Len(t, claimants, 2, uri)
	}
}

// The https entries are RE2 complements spelt out by hand; compare them
// with the rule they implement over many host and path shapes.
func TestHTTPSRegexesImplementTheRule(t *testing.T) {
	m := load(t)
	ours, kserve := m.cscs["clusterstoragecontainer"], m.cscs["default-without-overlap"]
	hosts := []string{"example.com", "localhost", "minio:9000", "10.0.0.1", "10.0.0.1:8443", "[::1]", "[fd00::1]:8443",
		"user@example.com", "n", "ne", "nett", "a.n", "a.ne", "a.nett", "a.net", "net.com", "x.net.org",
		"windows.net", "x.windows.net", "x.blob.core.windows.net", "x.blob.core.windows.net:443", "windows.com",
		"window.net", "windowss.net", "wind.net", "w.net", "wi.net", "xwindows.net", "windows.net.example.com",
		"azure.net", "x.azure.net", "x.z12.blob.storage.azure.net", "azur.net",
		"ACCT1.blob.core.windows.net", "a.b.blob.core.windows.net", "u@x.blob.core.windows.net", "a-b.blob.core.windows.net",
		"x.blob.core.windows.net.blob.core.windows.net", "x.z1.z12.blob.storage.azure.net", "x.z123.blob.storage.azure.net",
		"x.file.core.windows.net", "x.z3.file.storage.azure.net", "x.blob.core.windows.com", "x.dfs.core.windows.net", "azuree.net", "a.azure.com", "az.net",
		"cdn.azureedge.net", "WINDOWS.NET"}
	paths := []string{"/", "/t", "/it", "/git", "/.git", "/.git/", "/a.git", "/a.git/", "/a.gi", "/a.gitx", "/a.git.bin",
		"/a/b.bin", "//", "/a//", "/a.git//", "/model.tar.gz", "/f?x=.git", "/f#sha256=ab", "/x/", "/repo.git/tree/main/f",
		"/digit", "/xgit", "/x.t"}
	for _, h := range hosts {
		for _, p := range paths {
			uri := "https://" + h + p
			wantOurs := (!azureDomain(h) || azureBlob(h)) && !gitPath(p)
			assert.Equal(t, wantOurs, ours.supports(t, uri), "ours on %s", uri)
			wantKServe := gitPath(p) || azureFile(h) || azureBlobLookalike(h)
			assert.Equal(t, wantKServe, kserve.supports(t, uri), "default-without-overlap on %s", uri)
		}
	}
}

// Every Azure URI the init container claims is one the binary reads as
// Azure Blob (else its generic https provider would fetch it as a web
// page), and every URI it reads as Azure Blob without a port or user info
// is claimed by it.
func TestAzureBlobClaimsAreWhatTheBinaryReads(t *testing.T) {
	ours := load(t).cscs["clusterstoragecontainer"]
	var uris []string
	for _, u := range kserveURIs {
		uris = append(uris, u.uri)
	}
	for _, h := range []string{"acct.blob.core.windows.net", "ACCT1.blob.core.windows.net", "a.b.blob.core.windows.net",
		"u@x.blob.core.windows.net", "a-b.blob.core.windows.net", "x.z12.blob.storage.azure.net", "x.z1.z12.blob.storage.azure.net",
		"x.file.core.windows.net", "x.dfs.core.windows.net", "windows.net"} {
		uris = append(uris, "https://"+h+"/c/model", "https://"+h+"/c/m.git")
	}
	for _, uri := range uris {
		if !strings.HasPrefix(uri, "https://") {
			continue
		}
		u, err := url.Parse(uri)
		require.NoError(t, err, uri)
		if !azureDomain(u.Host) {
			continue
		}
		if ours.supports(t, uri) {
			assert.True(t, azblob.Matches(uri), "%s is claimed by %s but the binary does not read it as Azure Blob", uri, ours.name())
		} else if azblob.Matches(uri) && u.User == nil && u.Port() == "" && !gitPath(u.Path) {
			assert.Fail(t, "unclaimed", "the binary reads %s as Azure Blob but %s does not claim it", uri, ours.name())
		}
	}
}

// azureDomain: the host's last two labels are windows.net or azure.net
// (case-sensitive, as KServe's regexes are), or it is the bare label "net".
func azureDomain(hostPort string) bool {
	h := hostPort
	if i := strings.LastIndex(h, "@"); i >= 0 {
		h = h[i+1:]
	}
	if strings.HasPrefix(h, "[") {
		return false
	}
	if i := strings.Index(h, ":"); i >= 0 {
		h = h[:i]
	}
	labels := strings.Split(h, ".")
	n := len(labels)
	if labels[n-1] != "net" {
		return false
	}
	return n == 1 || labels[n-2] == "windows" || labels[n-2] == "azure"
}

// azureBlob: the Blob hosts storage-initializer reads as Azure Blob
// (azblob.Matches): an account name, letters and digits, before the Blob
// domain, and no port (KServe's regexes want "/" right after the host).
func azureBlob(h string) bool {
	return regexp.MustCompile(`^[A-Za-z0-9]+\.(?:blob\.core\.windows\.net|z[0-9]{1,2}\.blob\.storage\.azure\.net)$`).MatchString(h)
}

// azureBlobLookalike: the other hosts KServe's Python reads as Azure Blob
// (anything before the Blob domain), which stay on its image.
func azureBlobLookalike(h string) bool {
	return !azureBlob(h) &&
		regexp.MustCompile(`^[^/?#]+\.(?:blob\.core\.windows\.net|z[0-9]{1,2}\.blob\.storage\.azure\.net)$`).MatchString(h)
}

// azureFile: the Azure File host forms KServe's Python code serves.
func azureFile(h string) bool {
	return regexp.MustCompile(`^[^/?#]+\.(?:file\.core\.windows\.net|z[0-9]{1,2}\.file\.storage\.azure\.net)$`).MatchString(h)
}

func gitPath(p string) bool { return strings.HasSuffix(p, ".git") || strings.HasSuffix(p, ".git/") }

// LocalModelCache Jobs only look at localModelDownloadJob containers: ours
// must claim exactly what the init container claims, the rest falls back to
// the ConfigMap image.
func TestLocalModelDownloadJobRouting(t *testing.T) {
	m := load(t)
	ours, job := m.cscs["clusterstoragecontainer"], m.cscs["localmodelcache/clusterstoragecontainer"]
	assert.Equal(t, downloadJob, job.workloadType())
	assert.Equal(t, ours.Spec.SupportedURIFormats, job.Spec.SupportedURIFormats,
		"the download Job container must claim what the init container claims")
	assert.Equal(t, ours.Spec.Container.Image, job.Spec.Container.Image)
	var all []csc
	for _, c := range m.cscs {
		all = append(all, c)
	}
	for _, u := range kserveURIs {
		claimants, picked := route(t, all, downloadJob, u.uri)
		assert.LessOrEqual(t, len(claimants), 1, u.uri)
		want := fallback
		if u.want == "ours" {
			want = job.name()
		}
		assert.Equal(t, want, picked, "LocalModelCache of %s", u.uri)
	}
	for _, d := range m.docs {
		if d["kind"] == "LocalModelCache" {
			src := dig(d, "spec", "sourceModelUri").(string)
			_, picked := route(t, all, downloadJob, src)
			assert.Equal(t, job.name(), picked, "%s: %s", d["#file"], src)
		}
	}
}

// Services that name a container (canary, node cache) must name one that
// exists, is an enabled initContainer and claims their storageUri, as
// GetStorageContainerSpecByName demands; and the URIs those containers
// claim must not be used by a service that names no container.
func TestExplicitContainerSelection(t *testing.T) {
	m := load(t)
	byName := map[string]csc{}
	for _, c := range m.cscs {
		byName[c.name()] = c
	}
	selected := map[string]bool{}
	var unnamedURIs []string
	for _, d := range m.docs {
		if d["kind"] != "InferenceService" {
			continue
		}
		uri, _ := dig(d, "spec", "predictor", "model", "storageUri").(string)
		name, _ := dig(d, "spec", "predictor", "storageContainerName").(string)
		if name == "" {
			unnamedURIs = append(unnamedURIs, uri)
			continue
		}
		c, ok := byName[name]
		require.True(t, ok, "%s: storageContainerName %q names no ClusterStorageContainer in config/", d["#file"], name)
		assert.Equal(t, initContainer, c.workloadType(), "%s: %s", d["#file"], name)
		assert.True(t, c.Disabled == nil || !*c.Disabled, "%s is disabled", name)
		assert.True(t, c.supports(t, uri), "%s: %s does not claim %s: KServe refuses the service", d["#file"], name, uri)
		selected[name] = true
	}
	require.Len(t, selected, 2, "the canary and the node-cache examples")
	for name := range selected {
		c := byName[name]
		for _, u := range kserveURIs {
			assert.False(t, c.supports(t, u.uri), "%s claims %s: it would compete with the main containers", name, u.uri)
		}
		for _, uri := range unnamedURIs {
			assert.False(t, c.supports(t, uri), "%s claims %s, which a service without storageContainerName uses", name, uri)
		}
	}
}

// The LLMInferenceService manifests: the ConfigMap value is a complete
// storageInitializer document (it replaces the whole key), and every image
// patched in is the one the ClusterStorageContainer uses.
func TestLLMInferenceServiceManifests(t *testing.T) {
	m := load(t)
	image := m.cscs["clusterstoragecontainer"].Spec.Container.Image
	var seen int
	for _, d := range m.docs {
		switch d["kind"] {
		case "ConfigMap":
			if dig(d, "metadata", "name") != "inferenceservice-config" {
				continue
			}
			seen++
			var si map[string]any
			require.NoError(t, json.Unmarshal([]byte(dig(d, "data", "storageInitializer").(string)), &si))
			// KServe 0.20's config/configmap/inferenceservice.yaml keys.
			for _, k := range []string{"image", "memoryRequest", "memoryLimit", "cpuRequest", "cpuLimit",
				"caBundleConfigMapName", "caBundleVolumeMountPath", "enableModelcar", "cpuModelcar", "memoryModelcar", "uidModelcar"} {
				assert.Contains(t, si, k)
			}
			assert.Equal(t, image, si["image"])
		case "LLMInferenceService":
			seen++
			for _, path := range [][]string{{"spec", "template"}, {"spec", "router", "scheduler", "template"}} {
				tmpl, _ := dig(d, path...).(map[string]any)
				require.NotNil(t, tmpl, "%s: %v", d["#file"], path)
				var found bool
				for _, ic := range tmpl["initContainers"].([]any) {
					c := ic.(map[string]any)
					if c["name"] == "storage-initializer" {
						found = true
						assert.Equal(t, image, c["image"])
						assert.NotContains(t, c, "args", "the controller overrides args")
						assert.NotContains(t, c, "command", "the controller overrides command")
					}
				}
				assert.True(t, found, "%s: %v has no initContainers[name=storage-initializer]", d["#file"], path)
			}
		}
	}
	assert.Equal(t, 2, seen)
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
