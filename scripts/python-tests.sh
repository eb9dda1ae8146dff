#!/bin/sh
# The host's Debian python regression tests (os, posix, signal, threading, subprocess, fcntl,
# select, tempfile; package libpython3.11-testsuite) natively and under the userkernel, per
# module: tests run, passed, failed, errors, skipped. Needs root (the native side chroots).
# Usage: scripts/python-tests.sh [--native-only|--userkernel-only] [--modules os,signal]
#        [--timeout SECONDS] [--json FILE]
set -e
cd "$(dirname "$0")/.."
npm run build >/dev/null
exec node dist/test/userkernel/python-tests-main.js "$@"
