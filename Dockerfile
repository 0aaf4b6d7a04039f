# seance — a static binary on a distroless base: no shell, no package
# manager, runs as "nonroot" (uid 65532).
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t seance .
#   docker run --rm -p 8080:8080 -p 1935:1935 -p 8189:8189/udp seance   # embedded demo config
#
# The runtime image needs nothing but the binary: audio transcoding, HLS,
# recording and the built-in slate are in Go. It has no ffmpeg (seance
# refuses a channel's slate.image here) and no Chromium (a channel's
# ingest.meeting keeps saying "chromium is not installed"): for those,
# run seance on a Debian host, or build the Debian-based image the README
# describes ("Docker image without ffmpeg and Chromium").

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/seance ./cmd/seance \
 && /out/seance version \
 && mkdir -p /out/records

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/seance /seance
# The recordings directory (record.dir in configs/compose/seance.yaml),
# empty and owned by the user seance runs as: a named volume mounted there
# starts with this owner, so seance can write to it.
COPY --from=build --chown=65532:65532 /out/records /var/lib/seance/records
# Public HTTP (watch pages, WHEP, /healthz), RTMP ingest, RTSP output,
# WebRTC (one UDP port for every viewer), admin (dashboard, /metrics, API;
# reachable from outside the container only with admin.listen 0.0.0.0:9090
# and an admin.token).
EXPOSE 8080/tcp 1935/tcp 8554/tcp 8189/udp 9090/tcp
# nonroot, by number so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
# No shell or curl here: the binary checks itself. `seance healthcheck`
# GETs http://127.0.0.1:8080/healthz (change with -url when public.listen
# uses another port) and exits 0 on 200.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/seance", "healthcheck"]
# Without arguments seance serves its embedded demo config;
# docker-compose.yml passes -config /etc/seance/seance.yaml.
ENTRYPOINT ["/seance"]
