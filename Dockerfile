# Tribune: build the release binary, then run it on a slim Debian image.
# Templates, assets and migrations are compiled into the binary; only content/
# is copied beside it. The database is SQLite by default (below); set
# DATABASE_URL=postgres://… to run on PostgreSQL instead: the driver is built
# in, no client library is needed (docker-compose.postgres.yml does this).

# ---- build ----
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && cp target/release/tribune /usr/local/bin/tribune

# ---- run ----
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --home-dir /var/lib/tribune --shell /usr/sbin/nologin tribune \
 && mkdir -p /var/lib/tribune \
 && chown tribune:tribune /var/lib/tribune

WORKDIR /app
COPY --from=builder /usr/local/bin/tribune /usr/local/bin/tribune
COPY content/ /app/content/

ENV TRIBUNE_BIND=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/tribune/tribune.db \
    TRIBUNE_CONTENT=/app/content

# The SQLite database (the one file to back up) lives here. On PostgreSQL
# nothing is kept here.
VOLUME /var/lib/tribune
USER tribune
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1

CMD ["tribune", "serve"]
