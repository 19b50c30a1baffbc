#!/bin/sh
# The two set-up commands of the README, behind `npm start` / `npm test` (or
# `deno task start` / `deno task test`): install what is missing, then run.
#   sh scripts/dev.sh start   run the main job (hop cluster serve, embedded default)
#   sh scripts/dev.sh test    run the whole test suite on the built binary, on Deno and on Bun
#   sh scripts/dev.sh bench … run the benchmarks (scripts/bench.ts) with their reference tools
#   sh scripts/dev.sh deno …  run the project's Deno with any arguments
set -eu
cd "$(dirname "$0")/.."

# Deno 2 comes from the npm package `deno`, installed apart from the app's
# dependencies (tools/package.json), unless a Deno 2 is already on PATH.
find_deno() {
  if [ -x tools/node_modules/.bin/deno ]; then
    DENO=tools/node_modules/.bin/deno
  elif command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | grep -q '^deno 2\.'; then
    DENO=$(command -v deno)
  else
    echo "hop: installing Deno from npm into tools/ ..." >&2
    # `npm ci`: the lock lists every platform's package, so installing changes
    # no tracked file. Install scripts must run: they put the binaries in place.
    npm ci --prefix tools --no-audit --no-fund >&2
    DENO=tools/node_modules/.bin/deno
  fi
}

# The app's npm dependencies, pinned by package-lock.json.
install_deps() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    echo "hop: installing npm dependencies ..." >&2
    npm ci --ignore-scripts --no-audit --no-fund >&2
    touch node_modules
  fi
}

# Real peers the tests run against, from Debian's packages (root only).
install_test_peers() {
  need=""
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import pyftpdlib' 2>/dev/null || need="$need python3-pyftpdlib"
  /usr/bin/python3 -c 'import OpenSSL' 2>/dev/null || need="$need python3-openssl"
  # the real Escale client (../shared/peers) runs on Debian's Python with these
  /usr/bin/python3 -c 'import requests' 2>/dev/null || need="$need python3-requests"
  /usr/bin/python3 -c 'import cryptography' 2>/dev/null || need="$need python3-cryptography"
  # chromium renders the cluster dashboard; mandoc checks the man page; zsh and fish load
  # the shell completions
  # rsync is a reference of the benchmarks (deno task bench); the storage drivers' tests run
  # OpenSSH's sshd (SFTP), Apache mod_dav and rclone (WebDAV, rclone remotes)
  for p in rsync:rsync sshd:openssh-server apache2:apache2 rclone:rclone vsftpd:vsftpd lftp:lftp curl:curl bzip2:bzip2 pbzip2:pbzip2 lbzip2:lbzip2 ip:iproute2 openssl:openssl chromium:chromium mandoc:mandoc zsh:zsh fish:fish; do
    command -v "${p%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${p%%:*}" ] || need="$need ${p#*:}"
  done
  [ -z "$need" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "hop: installing test peers:$need" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >&2
  else
    echo "hop: missing test peers:$need (run as root on Debian to install them)" >&2
    exit 1
  fi
}

find_deno
install_deps
case "${1:-}" in
  start)
    shift
    exec "$DENO" run -A cli.ts cluster serve "$@"
    ;;
  test)
    shift
    install_test_peers
    exec "$DENO" run -A scripts/test.ts "$@"
    ;;
  bench)
    shift
    install_test_peers
    exec "$DENO" run -A scripts/bench.ts "$@"
    ;;
  deno)
    shift
    exec "$DENO" "$@"
    ;;
  *)
    echo "usage: sh scripts/dev.sh start|test|bench|deno ..." >&2
    exit 2
    ;;
esac
