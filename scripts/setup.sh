#!/usr/bin/env bash
# Entrada: install everything this checkout needs to run the demo and the tests, on a fresh
# Debian 12 or Raspberry Pi OS machine or on one that already has some of it.
#
#   scripts/setup.sh        (scripts/demo.sh and scripts/test.sh run it first)
#
# Each step runs only when needed, so a second run changes nothing and takes a second or two:
#   1. find a python3 >= 3.11: $ENTRADA_PYTHON if set, else python3, python3.13, .12, .11
#   2. install the Debian packages that are missing: espeak-ng (a display board's spoken
#      calls are recorded with it at install time), mosquitto and mosquitto-clients (tests
#      and the demo start private brokers on free ports; the system broker service is left
#      as the package set it up), python3-venv only when the python cannot make a venv, and
#      on a Raspberry Pi the headers and compiler for spidev/lgpio should no wheel fit.
#      `apt-get update` runs only when something must be installed. As root apt runs
#      directly, otherwise through sudo; with neither, the script prints what to install
#      and exits non-zero.
#   3. make the virtual environment .venv at the repository root; an existing working one
#      is adopted, a broken one (e.g. its python was removed) is made anew
#   4. pip install the package editable with its dev tools. mfrc522 declares RPi.GPIO and
#      spidev as hard dependencies, which compile and only work on a Pi, so it is installed
#      with --no-deps; on a Pi the rest of the `pi` extra follows (see install_packages).
#      A stamp in .venv (pyproject.toml's hash, this script's version, python, checkout
#      path, Pi or not) skips this step when nothing changed.
#
# Progress goes to stderr, one line a step (so `scripts/demo.sh --json | jq` works); a
# step's full output is printed only when it fails.
#
# Environment: ENTRADA_PYTHON=/path/to/python3 picks the interpreter;
#              ENTRADA_PI=1 or 0 overrides the Raspberry Pi detection.
set -euo pipefail

# Bump when this script's pip step changes, so existing .venvs are brought up to date.
SETUP_VERSION=2
MIN_PYTHON=(3 11)
APT_BASE=(mosquitto mosquitto-clients espeak-ng)

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
STAMP="$VENV/.entrada-setup-stamp"
cd -- "$ROOT"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off
export DEBIAN_FRONTEND=noninteractive

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

LOG=""
cleanup() { if [[ -n $LOG ]]; then rm -f -- "$LOG"; fi; }
trap cleanup EXIT

# run DESCRIPTION COMMAND...: one progress line; the command's output only if it fails.
run() {
    local desc=$1 start=$SECONDS rc=0
    shift
    [[ -n $LOG ]] || LOG="$(mktemp "${TMPDIR:-/tmp}/entrada-setup.XXXXXX")"
    printf 'setup: %s ... ' "$desc" >&2
    "$@" >"$LOG" 2>&1 </dev/null || rc=$?
    if ((rc == 0)); then
        printf 'ok (%ss)\n' "$((SECONDS - start))" >&2
        return 0
    fi
    printf 'FAILED (exit %s)\n' "$rc" >&2
    printf -- '----- output of: %s\n' "$*" >&2
    cat -- "$LOG" >&2
    printf -- '----- end of output (setup step failed: %s)\n' "$desc" >&2
    exit "$rc"
}

# ---------------------------------------------------------------- 1. python >= 3.11
python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= ('"${MIN_PYTHON[0]}, ${MIN_PYTHON[1]}"') else 1)' \
        >/dev/null 2>&1
}

find_python() {
    local candidate path
    if [[ -n ${ENTRADA_PYTHON:-} ]]; then
        python_ok "$ENTRADA_PYTHON" ||
            die "ENTRADA_PYTHON=$ENTRADA_PYTHON is not a python >= ${MIN_PYTHON[0]}.${MIN_PYTHON[1]}"
        printf '%s\n' "$ENTRADA_PYTHON"
        return 0
    fi
    for candidate in python3 python3.13 python3.12 python3.11; do
        path="$(command -v "$candidate" 2>/dev/null)" || continue
        if python_ok "$path"; then
            printf '%s\n' "$path"
            return 0
        fi
    done
    die "no python >= ${MIN_PYTHON[0]}.${MIN_PYTHON[1]} found (tried python3, python3.13, python3.12," \
        "python3.11; found: $(python3 --version 2>&1 || echo none)). Debian 12 and Raspberry Pi" \
        "OS 12 ship 3.11: sudo apt-get install python3. Or set ENTRADA_PYTHON=/path/to/python3."
}

# ---------------------------------------------------------------- helpers for the checks
is_pi() {
    case "${ENTRADA_PI:-}" in
        1) return 0 ;;
        0) return 1 ;;
    esac
    [[ -r /proc/device-tree/model ]] && tr -d '\0' </proc/device-tree/model | grep -q 'Raspberry Pi'
}

pi_flag() { if is_pi; then echo 1; else echo 0; fi; }

deb_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'
}

have_cmd() { PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin" command -v "$1" >/dev/null 2>&1; }

venv_works() {
    [[ -x $VPY ]] && python_ok "$VPY" && "$VPY" -c 'import pip' >/dev/null 2>&1
}

# The Debian package that gives this python its ensurepip (what `python -m venv` needs).
venv_package_for() {
    local py real ver
    py=$1
    real="$(readlink -f -- "$py")"
    ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    case "$real" in
        /usr/bin/python*)
            if [[ $(readlink -f /usr/bin/python3 2>/dev/null) == "$real" ]]; then
                echo python3-venv
            else
                echo "python${ver}-venv"
            fi
            ;;
        *) return 1 ;; # not Debian's python: apt cannot fix it
    esac
}

# ---------------------------------------------------------------- 2. Debian packages
install_debs() {
    local -a sudo_cmd=()
    if ((EUID != 0)); then
        if have_cmd sudo && sudo -n true 2>/dev/null; then
            sudo_cmd=(sudo -n)
        elif have_cmd sudo && [[ -t 0 && -t 2 ]]; then
            say "sudo is needed to install: $*"
            sudo -v || die "sudo refused; as root run: apt-get update && apt-get install -y $*"
            sudo_cmd=(sudo)
        else
            say "missing system packages: $*"
            say "this script is not root and cannot use sudo; as root run:"
            printf '    apt-get update && apt-get install -y %s\n' "$*" >&2
            say "then run this script again."
            exit 1
        fi
    fi
    run "apt-get update" ${sudo_cmd[@]+"${sudo_cmd[@]}"} \
        env DEBIAN_FRONTEND=noninteractive apt-get update
    run "apt-get install $*" ${sudo_cmd[@]+"${sudo_cmd[@]}"} \
        env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

ensure_system_packages() {
    local -a want=("${APT_BASE[@]}") missing=()
    local pkg venv_pkg=""
    if is_pi; then
        # spidev and lgpio compile when no wheel fits (piwheels usually has one).
        want+=(python3-dev gcc)
    fi
    if ! venv_works && ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        venv_pkg="$(venv_package_for "$PY")" ||
            die "$PY cannot create virtual environments (its ensurepip module is missing)" \
                "and is not Debian's python, so apt cannot fix it. Rebuild it with ensurepip," \
                "or set ENTRADA_PYTHON to another python >= ${MIN_PYTHON[0]}.${MIN_PYTHON[1]}."
        want+=("$venv_pkg")
    fi

    if have_cmd dpkg-query; then
        for pkg in "${want[@]}"; do
            deb_installed "$pkg" || missing+=("$pkg")
        done
    else
        # Not a Debian system: check the programs and let the person install them.
        have_cmd mosquitto || missing+=(mosquitto)
        have_cmd mosquitto_pub || missing+=(mosquitto-clients)
        have_cmd espeak-ng || missing+=(espeak-ng)
        [[ -z $venv_pkg ]] || missing+=("$venv_pkg")
        if ((${#missing[@]})); then
            die "not a Debian system (no dpkg); install these with your package manager:" \
                "${missing[*]}"
        fi
    fi

    if ((${#missing[@]} == 0)); then
        say "system packages present: ${want[*]}"
        return 0
    fi
    have_cmd apt-get || die "apt-get not found; install these packages: ${missing[*]}"
    install_debs "${missing[@]}"
}

# ---------------------------------------------------------------- 3. .venv
ensure_venv() {
    if venv_works; then
        say "virtual environment present: .venv ($("$VPY" --version 2>&1))"
        return 0
    fi
    if [[ -e $VENV || -L $VENV ]]; then
        say ".venv exists but does not work (no python >= ${MIN_PYTHON[0]}.${MIN_PYTHON[1]} with pip in it); making it anew"
        rm -rf -- "$VENV"
    fi
    run "creating .venv with $("$PY" --version 2>&1) ($PY)" "$PY" -m venv "$VENV"
    venv_works || die ".venv was created but its python does not work: $VPY"
}

# ---------------------------------------------------------------- 4. pip
# Requirements of the `pi` extra, one a line, read from pyproject.toml so it stays the one
# place they are written. mfrc522's line comes first, tagged.
pi_extra() {
    "$VPY" - "$ROOT/pyproject.toml" <<'PY'
import re
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    extra = tomllib.load(f)["project"]["optional-dependencies"].get("pi", [])
for req in extra:
    name = re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower()
    print(("MFRC522 " if name == "mfrc522" else "OTHER ") + req)
PY
}

stamp_text() {
    printf 'setup_version=%s\n' "$SETUP_VERSION"
    printf 'pyproject_sha256=%s\n' "$(sha256sum <"$ROOT/pyproject.toml" | cut -d' ' -f1)"
    printf 'root=%s\n' "$ROOT"
    printf 'python=%s\n' "$("$VPY" -c 'import sys; print(sys.version.split()[0])')"
    printf 'pi=%s\n' "$(pi_flag)"
}

# The package is importable from this checkout (the editable install is in place).
editable_in_place() {
    "$VPY" - "$ROOT" >/dev/null 2>&1 <<'PY'
import importlib.util
import os
import sys

spec = importlib.util.find_spec("entrada")
root = os.path.realpath(sys.argv[1])
ok = spec is not None and spec.origin is not None
ok = ok and os.path.realpath(spec.origin).startswith(root + os.sep)
sys.exit(0 if ok else 1)
PY
}

install_packages() {
    local want line mfrc522=""
    local -a others=()
    want="$(stamp_text)"
    if [[ -f $STAMP && "$(cat -- "$STAMP")" == "$want" ]] && editable_in_place; then
        say "python packages up to date (stamp .venv/$(basename -- "$STAMP"))"
        return 0
    fi
    [[ -w $VENV ]] ||
        die ".venv is not writable by $(id -un) (was it made by root, e.g. with sudo?);" \
            "fix with: sudo chown -R $(id -un): '$VENV'  (or remove it and run again)"
    rm -f -- "$STAMP"

    while IFS= read -r line; do
        case "$line" in
            "MFRC522 "*) mfrc522="${line#MFRC522 }" ;;
            "OTHER "*) others+=("${line#OTHER }") ;;
        esac
    done < <(pi_extra)
    [[ -n $mfrc522 ]] || die "pyproject.toml's pi extra names no mfrc522 requirement"

    run "pip install -e '.[dev]'" "$VPY" -m pip install -e ".[dev]"
    # RPi.GPIO and spidev, mfrc522's declared dependencies, compile and only work on a Pi.
    run "pip install --no-deps $mfrc522" "$VPY" -m pip install --no-deps "$mfrc522"
    if is_pi; then
        # The rest of the `pi` extra. Not `pip install '.[pi]'`: that would also pull in
        # RPi.GPIO through mfrc522, which installs the same RPi/GPIO module as rpi-lgpio
        # (the one that works on a Pi 5 as well) and must not sit beside it.
        if ((${#others[@]})); then
            run "pip install ${others[*]} (Raspberry Pi)" "$VPY" -m pip install "${others[@]}"
        fi
        if "$VPY" -m pip show RPi.GPIO >/dev/null 2>&1; then
            run "pip uninstall RPi.GPIO (rpi-lgpio provides RPi.GPIO)" \
                "$VPY" -m pip uninstall -y RPi.GPIO
            run "pip reinstall rpi-lgpio" "$VPY" -m pip install --force-reinstall --no-deps rpi-lgpio
        fi
    fi
    editable_in_place || die "pip finished but the entrada package is not importable from $ROOT"
    printf '%s\n' "$want" >"$STAMP.tmp"
    mv -f -- "$STAMP.tmp" "$STAMP"
}

# ---------------------------------------------------------------- main
main() {
    PY="$(find_python)"
    local where="not a Raspberry Pi"
    if is_pi; then where="Raspberry Pi"; fi
    say "python: $("$PY" --version 2>&1) ($PY); $where"
    ensure_system_packages
    ensure_venv
    install_packages
    say "ready: $ROOT/.venv"
}

main "$@"
