#!/bin/bash
# Fails, printing it, unless the query result in $1 is empty.
set -u
if [[ -s "$1" ]]; then
  echo "FAIL: the drill's binaries reach production builds of libraries with planted bugs:"
  cat "$1"
  exit 1
fi
echo "OK: $1 is empty"
