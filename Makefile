# seance — make test installs what the tests need (on Debian, as root) and
# runs the whole suite: format, vet, staticcheck, race-enabled tests with
# real peers (ffmpeg, ffprobe).

GO ?= go
STATICCHECK_VERSION ?= v0.8.2
GOBIN ?= $(shell $(GO) env GOPATH)/bin

.PHONY: test deps lint unit e2e run build fuzz bench clip slates deb test-deb

# make test is CI's command (.ci/run) and the README's: everything.
# make unit is the inner loop: every package but the real-time end-to-end ones.
test: deps lint unit test-deb e2e

deps:
	@scripts/install-test-deps.sh
	@# livekit-server, the real SFU of the LiveKit meeting tests: built once
	@# per machine from the Go module proxy (about 7 min cold), then cached.
	@scripts/build-livekit-server.sh >/dev/null
	@test -x $(GOBIN)/staticcheck || GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags debtest ./packaging/
	$(GOBIN)/staticcheck ./...
	$(GOBIN)/staticcheck -tags debtest ./packaging/

# The end-to-end packages run real-time peers (ffmpeg encoding 720p30,
# headless Chromium) and check frame rates and delays: they run alone, after
# the other packages, so that CPU starvation on a 2-core CI machine cannot
# fail them.
E2E_PKGS := ./ingest/meeting ./cmd/seance
unit:
	$(GO) test -race -count=1 -timeout 8m $$($(GO) list ./... | grep -v -e '/ingest/meeting$$' -e '/cmd/seance$$')

e2e:
	$(GO) test -race -count=1 -timeout 12m -p 1 $(E2E_PKGS)

run:
	$(GO) run ./cmd/seance

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$$(git describe --tags --always --dirty 2>/dev/null || echo dev)" -o seance ./cmd/seance

# Short fuzzing sessions of every fuzz target (the seeds already run in `make test`).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=20s $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./relay/

# Regenerates the embedded demo clip (needs ffmpeg).
clip:
	ingest/demo/gen-clip.sh

# Regenerates the embedded slates (needs ffmpeg and fonts-dejavu-core).
slates:
	slate/gen-slates.sh

# Debian packages (packaging/): dist/seance_<version>_amd64.deb and
# _arm64.deb, built with nfpm run at a pinned version by `go run` (its
# dependencies stay out of go.mod; the first, cold run downloads and
# builds it: about 340 MB of modules, ~3.5 min on a loaded 2-core machine).
deb:
	packaging/build-deb.sh -o dist amd64 arm64

# Builds the amd64 package, inspects it, installs it into a throwaway root
# (an overlay of /usr in a mount namespace), runs systemd-analyze verify and
# security on the unit, seance init and check-config, and a meeting capture
# under the unit's restrictions in systemd-nspawn. Apart from `unit`: it
# needs root and takes about a minute once nfpm is built (30 s of it show
# Chromium failing under MemoryDenyWriteExecute).
test-deb:
	$(GO) test -tags debtest -race -count=1 -timeout 10m ./packaging/

# Regenerates the embedded hls.js (web/static/hls.min.js, hls.worker.js and
# its licence) from the version pinned in web/browsertest/package-lock.json.
.PHONY: hlsjs
hlsjs:
	scripts/update-hlsjs.sh
