#!/bin/sh
# Container entry point: apply database migrations (unless told not to), then run the command.
#
# With several replicas, run migrations once (e.g. `docker run --rm hamroh hamroh db upgrade`) and
# start the replicas with HAMROH_MIGRATE_ON_START=0, so that they do not race each other.
set -eu
if [ "${HAMROH_MIGRATE_ON_START:-1}" != "0" ]; then
  hamroh db upgrade
fi
exec "$@"
