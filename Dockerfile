# Final image: the static binary, CA certificates, non-root UID 1000 with
# group 0 (OpenShift-style random UIDs keep write access through the group).
# Built from a prebuilt binary (`make build`, then `make image`), because no
# base image can be pulled on the build machines; see hack/image.sh.
FROM scratch
COPY bin/storage-initializer /storage-initializer
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
USER 1000:0
ENTRYPOINT ["/storage-initializer"]
