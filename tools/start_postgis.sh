#!/bin/sh
# Start a local PostgreSQL 15 with PostGIS for the tests (idempotent; run as root, e.g. in CI).
# Installs Debian's postgresql-15 and postgresql-15-postgis-3 when missing, starts cluster 15/main,
# and makes the role and database the tests use (SEG_TEST_PG, default below) with the postgis extension.
set -eu
cd /  # su postgres cannot enter a private working folder
ROLE="${SEG_PG_ROLE:-seg}"
PASSWORD="${SEG_PG_PASSWORD:-seg}"
DB="${SEG_PG_DB:-seg_test}"
if [ ! -e /usr/share/postgresql/15/extension/postgis.control ] || ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 postgresql-15-postgis-3
fi
pg_lsclusters -h | grep -q '^15 *main' || pg_createcluster 15 main
pg_lsclusters -h | grep -q '^15 *main.*online' || pg_ctlcluster 15 main start
psql_pg() { su postgres -c "PGOPTIONS=--client-min-messages=warning psql -v ON_ERROR_STOP=1 -qtA $*"; }
i=0
until su postgres -c "pg_isready -q"; do i=$((i + 1)); [ $i -lt 30 ] || { echo "PostgreSQL did not start" >&2; exit 1; }; sleep 1; done
[ "$(psql_pg "-c \"SELECT 1 FROM pg_roles WHERE rolname='$ROLE'\"")" = 1 ] || \
    psql_pg "-c \"CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'\""
[ "$(psql_pg "-c \"SELECT 1 FROM pg_database WHERE datname='$DB'\"")" = 1 ] || \
    psql_pg "-c \"CREATE DATABASE $DB OWNER $ROLE\""
psql_pg "-d $DB -c \"CREATE EXTENSION IF NOT EXISTS postgis\""
echo "SEG_TEST_PG=postgresql://$ROLE:$PASSWORD@localhost:5432/$DB"
