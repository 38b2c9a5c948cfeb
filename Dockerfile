# A static (musl) mta_exporter in an otherwise empty image: no shell, no
# libc, no package manager; runs as nobody (65534) and writes nothing, so
# it runs with a read-only root filesystem.
#
#   docker build -t mta_exporter:0.1.0 .
#   docker run --rm -p 10040:10040 --read-only \
#     -v /var/log/mail.log:/var/log/mail.log:ro mta_exporter:0.1.0
#
# The build stage is the one place that needs a toolchain; scripts/test.sh
# builds the same static binary with the same command and checks it.
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
ENV CC_x86_64_unknown_linux_musl=musl-gcc
# strip: the release profile keeps line tables for backtraces (23 MB);
# the image gets the 5 MB binary without them.
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
    && strip -o /mta_exporter target/x86_64-unknown-linux-musl/release/mta_exporter

FROM scratch
LABEL org.opencontainers.image.title="mta_exporter" \
      org.opencontainers.image.description="Prometheus exporter: classifies every SMTP reply code in mail server logs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /mta_exporter /mta_exporter
USER 65534:65534
EXPOSE 10040
ENTRYPOINT ["/mta_exporter"]
CMD ["--log.path", "/var/log/mail.log"]
