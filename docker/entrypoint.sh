#!/bin/sh
# Bring the schema up to date and the territory referential in place, then run the command.
set -e
maillage db upgrade
maillage territories load --if-empty
exec "$@"
