#!/usr/bin/env bash
# Entrada: generate the site broker's Mosquitto files from a site folder, and optionally
# install them on the broker host.
#
#   scripts/gen-broker-config.sh [--site-dir DIR] [--out DIR] [--install]
#
#   --site-dir DIR  the site folder (`entrada site init`); default $ENTRADA_SITE_DIR, else .
#   --out DIR       where to write the files; default ./broker-config
#   --install       as root on the broker host: put the files in /etc/mosquitto/entrada/
#                   (root:mosquitto, 0640 for secrets: Mosquitto 2 reads them after dropping
#                   to its own user), mosquitto.conf over /etc/mosquitto/mosquitto.conf (the
#                   package's one is kept once as mosquitto.conf.dpkg-entrada), then reload
#                   Mosquitto (passwords and ACL) or restart it (listeners, certificates).
#
# Written by `entrada broker-config` (entrada/brokerconf.py): mosquitto.conf, passwd, acl,
# ca.crt, broker.crt, broker.key. Run it again after every `entrada provision`.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
ENTRADA="$ROOT/.venv/bin/entrada"
FILES_DIR=/etc/mosquitto/entrada
MAIN_CONF=/etc/mosquitto/mosquitto.conf

say() { printf 'gen-broker-config: %s\n' "$*" >&2; }
die() { printf 'gen-broker-config: ERROR: %s\n' "$*" >&2; exit 1; }

site_dir="${ENTRADA_SITE_DIR:-.}"
out="./broker-config"
install=0
while (($#)); do
    case $1 in
        --site-dir) site_dir=${2:?--site-dir needs a folder}; shift 2 ;;
        --out) out=${2:?--out needs a folder}; shift 2 ;;
        --install) install=1; shift ;;
        -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

[[ -x $ENTRADA ]] || die "$ENTRADA missing: run scripts/setup.sh first"
"$ENTRADA" broker-config --site-dir "$site_dir" --out "$out" --files-dir "$FILES_DIR"

((install)) || exit 0

((EUID == 0)) || die "--install must run as root (on the broker host)"
getent group mosquitto >/dev/null || die "no mosquitto group: apt-get install mosquitto"

# Listeners and certificates are read at start only; passwords and ACL on a reload.
restart=0
for f in broker.crt broker.key ca.crt; do
    cmp -s "$out/$f" "$FILES_DIR/$f" || restart=1
done
cmp -s "$out/mosquitto.conf" "$MAIN_CONF" || restart=1

install -d -o root -g mosquitto -m 0750 "$FILES_DIR"
install -o root -g mosquitto -m 0640 "$out/passwd" "$out/acl" "$out/broker.key" "$FILES_DIR/"
install -o root -g mosquitto -m 0644 "$out/ca.crt" "$out/broker.crt" "$FILES_DIR/"
if [[ -f $MAIN_CONF && ! -f $MAIN_CONF.dpkg-entrada ]]; then
    cp -p "$MAIN_CONF" "$MAIN_CONF.dpkg-entrada"
fi
install -o root -g root -m 0644 "$out/mosquitto.conf" "$MAIN_CONF"

if ((restart)); then
    say "listeners or certificates changed: restarting mosquitto"
    systemctl restart mosquitto
else
    say "passwords and ACL changed: reloading mosquitto"
    systemctl reload mosquitto
fi
say "installed in $FILES_DIR and $MAIN_CONF"
