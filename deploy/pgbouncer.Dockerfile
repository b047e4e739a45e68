# PgBouncer from Debian bookworm (1.18, the same package ebb's tests run against), as the
# postgres user; configuration mounted at /etc/pgbouncer (deploy/pgbouncer.ini, userlist).
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends pgbouncer && rm -rf /var/lib/apt/lists/*
USER postgres
EXPOSE 6432
CMD ["/usr/sbin/pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]
