# storage-initializer — see README.md.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin/storage-initializer

.PHONY: build test e2e bench bench-ab demo image lint fuzz load clean

build: ## static, trimmed binary in bin/
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/storage-initializer

test: ## every test, against real MinIO and registry servers started on loopback
	hack/test.sh

e2e: ## only the end-to-end tests of the binary
	hack/test.sh ./cmd/...

bench: build ## compare with aws-cli, rclone, crane, skopeo on the same servers
	hack/bench.sh

bench-ab: ## this tree against BASE (default HEAD~1) on S3 large/small, modelcar, ModelPack: before/after medians
	hack/bench-ab.sh $(BASE)

demo: build ## local MinIO + registry, stage a small model, download it three ways
	hack/demo.sh

image: build ## scratch-like container image from the prebuilt binary
	hack/image.sh

lint: ## gofmt check, go vet, staticcheck (installed into .cache/bin); all three run, any finding fails
	@hack/tools.sh staticcheck
	@rc=0; \
	files=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$files" ]; then echo "== gofmt needed:"; echo "$$files"; rc=1; fi; \
	echo "== go vet"; go vet ./... || rc=1; \
	echo "== staticcheck"; .cache/bin/staticcheck ./... || rc=1; \
	exit $$rc

fuzz:
	hack/fuzz.sh 60s

load: build ## 10,000 small files and one 8 GiB file: peak RSS and open descriptors
	hack/load.sh

clean:
	rm -rf bin
