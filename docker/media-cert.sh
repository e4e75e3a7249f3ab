#!/usr/bin/env bash
# The certificate MediaMTX serves RTSPS with: docker/certs/server.crt and server.key.
#
#   docker/media-cert.sh [--dir DIR] [NAME...]
#
# Makes a self-signed certificate (EC P-256, 825 days) for the names robots use in their
# server_url (DNS names or IP addresses; default: HAVATAR_DOMAIN and HAVATAR_PUBLIC_HOST
# from docker/.env), unless DIR (default docker/certs) already holds server.crt and
# server.key: an operator's own certificate (e.g. the domain's public one) is left alone.
# Robots trust a self-signed one through server_ca_file (a copy of server.crt, never the
# key). Run it once before `docker compose up`; MediaMTX reloads the files when they change.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir="$here/certs"
if [ "${1:-}" = --dir ]; then
  dir=$2
  shift 2
fi
names=("$@")
if [ ${#names[@]} -eq 0 ] && [ -f "$here/.env" ]; then
  for key in HAVATAR_DOMAIN HAVATAR_PUBLIC_HOST; do
    value=$(sed -n "s/^$key=//p" "$here/.env" | tail -n 1)
    if [ -n "$value" ] && [[ " ${names[*]-} " != *" $value "* ]]; then
      names+=("$value")
    fi
  done
fi
if [ ${#names[@]} -eq 0 ]; then
  echo "media-cert.sh: no names: give them (media.example.org 203.0.113.7) or set HAVATAR_DOMAIN in $here/.env" >&2
  exit 2
fi
mkdir -p "$dir"
if [ -s "$dir/server.crt" ] && [ -s "$dir/server.key" ]; then
  echo "media-cert.sh: $dir/server.crt and server.key exist; left as they are"
  exit 0
fi
san=""
for name in "${names[@]}"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
    san+="${san:+,}IP:$name"
  else
    san+="${san:+,}DNS:$name"
  fi
done
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
  -subj "/CN=${names[0]}" -addext "subjectAltName=$san" \
  -keyout "$dir/server.key" -out "$dir/server.crt" 2>/dev/null
chmod 644 "$dir/server.crt"
echo "media-cert.sh: made $dir/server.crt for $san"
echo "  robots: copy server.crt (not the key) to /etc/havatar/media-ca.pem and set server_ca_file to it"
