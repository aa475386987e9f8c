# authgate's container image: the static binary and a CA bundle, nothing else.
#
# The binaries come from scripts/cross-build (target/dist/linux-<arch>/authgate), so this
# file has no RUN step: nothing executes at build time, no emulation is needed, and a
# multi-platform build works on any machine:
#
#   scripts/cross-build
#   docker buildx build --platform linux/arm64,linux/amd64 -t authgate:0.1.0 .
#   buildah bud --platform linux/arm64,linux/amd64 --manifest authgate:0.1.0 .
#
# scripts/check-image builds both platforms with buildah and checks the result.
FROM scratch

# Set by BuildKit and buildah from --platform: arm64 or amd64.
ARG TARGETARCH

LABEL org.opencontainers.image.title="authgate" \
      org.opencontainers.image.description="Forward-auth for NGINX Ingress: OIDC login, encrypted sessions, one process for every workspace" \
      org.opencontainers.image.licenses="Apache-2.0"

# CA certificates for the TLS connections to the identity providers (staged by cross-build).
COPY target/dist/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY target/dist/linux-${TARGETARCH}/authgate /usr/local/bin/authgate

ENV AUTHGATE_CONFIG=/etc/authgate \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

# The "nonroot" user of distroless images; no /etc/passwd entry is needed for a numeric id.
USER 65532:65532
EXPOSE 4180
ENTRYPOINT ["/usr/local/bin/authgate"]
CMD ["serve"]
