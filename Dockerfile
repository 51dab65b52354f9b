# The shipped image: the static binary, the CA bundle, nothing else.
#
# Built from a prebuilt binary (`make build`, then `make image`; the
# goreleaser pattern) because no base image can be pulled on the build
# machines. hack/image.sh lays out the build context:
#   storage-initializer   the static binary (CGO off, trimmed, version stamped)
#   ca-certificates.crt   the build host's CA bundle (Debian's ca-certificates)
# Dockerfile.multistage builds the binary inside the build instead, for users
# whose builder can pull golang and scratch.
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="storage-initializer" \
      org.opencontainers.image.description="Drop-in replacement for KServe's storage-initializer: parallel, verified, resumable model downloads" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Go reads /etc/ssl/certs/ca-certificates.crt on Linux; no other file is needed.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY storage-initializer /storage-initializer
# UID 1000 like KServe's image; group 0 so OpenShift's random UIDs (always in
# group 0) and fsGroup-less emptyDirs keep working. Numeric, because scratch
# has no /etc/passwd and Kubernetes' runAsNonRoot can only check a number.
USER 1000:0
# KServe sets only `args` (SRC DEST …), never `command`.
ENTRYPOINT ["/storage-initializer"]
