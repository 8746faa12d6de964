#!/bin/bash
# Sourced by the MariaDB image's entrypoint after 01-biostar2_ac.sql (first start only): the read-only
# account hrsync uses for BioStar (HRSYNC_BIOSTAR_URL), with the password of BIOSTAR_DB_PASSWORD.
# docker_process_sql and docker_sql_escape_string_literal are the entrypoint's own helpers.
password=$(docker_sql_escape_string_literal "${BIOSTAR_DB_PASSWORD:?BIOSTAR_DB_PASSWORD is not set}")
docker_process_sql --database=mysql <<SQL
CREATE USER IF NOT EXISTS 'biostar_ro'@'%' IDENTIFIED BY '${password}';
GRANT SELECT ON biostar2_ac.* TO 'biostar_ro'@'%';
SQL
