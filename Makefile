# cccp: the container pipeline bot.
#   make demo   set up this machine (Debian) and run the pipeline on the example index
#   make test   run every test (installs the container tools it needs first)
#   make bench  run the benchmarks and write BENCHMARKS.md
#   make image  build, test and deliver cccp's own image with cccp (deploy/Containerfile)

GO        ?= go
BIN       := bin/cccp
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
DATA      ?= $(CURDIR)/.cccp-data

.PHONY: all build deps tools demo image test test-short bench fuzz lint clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/cccp

# deps installs the system packages cccp drives (Debian/Ubuntu, as root).
deps:
	./hack/install-deps.sh

# tools installs the Go tools the tests drive (cosign, helm) into bin/tools.
tools:
	./hack/tools.sh

demo: deps build
	./hack/demo.sh $(BIN) $(DATA)

# image builds, tests and delivers cccp's own image through cccp's own
# pipeline (testdata/image; the committed HEAD of this branch).
image: deps build
	./hack/image.sh $(BIN) $(DATA)

# CCCP_TEST_REQUIRE_CONTAINERS: deps installed the container tools, so a
# container test that finds one missing fails instead of skipping.
# -timeout is per package and guards against hangs: the longest,
# deploy/imagetest, takes about 4 min on a machine that has its test bases
# and 10 to 18 min on a fresh one (debootstrap, one cold compile of cccp;
# BENCHMARKS.md).
test: deps tools
	$(GO) vet ./...
	CCCP_TEST_REQUIRE_CONTAINERS=1 $(GO) test -count=1 -timeout 30m ./...

test-short:
	$(GO) test -short -count=1 ./...

bench: deps build
	./hack/bench.sh

fuzz:
	./hack/fuzz.sh 30s

clean:
	rm -rf bin $(DATA)
