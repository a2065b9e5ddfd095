#!/usr/bin/env bash
# One entry point for a fresh machine: sets up everything the project needs, then runs it.
#   ./run.sh app  [anomaly-chat ui flags]   start the chat app (offline backend, embedded store)
#   ./run.sh test [pytest args]             run the test suite
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-app}"; shift || true
VENV="${ANOMALY_CHAT_VENV:-.venv}"

say() { printf '[run.sh] %s\n' "$*" >&2; }

need_apt=()
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib libusb-1.0.so.0 || need_apt+=(libusb-1.0-0)          # open3d links against it
if [ "$mode" = test ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # the browser test drives it
  [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need_apt+=(fonts-noto-color-emoji)  # legible screenshots
fi
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing system packages: ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    say "installing system packages with sudo: ${need_apt[*]}"
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    say "missing system packages; run this once, then run ./run.sh $mode again:"
    say "  sudo apt-get install -y ${need_apt[*]}"
    exit 2
  fi
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { say "Python 3.11 or newer is needed (found $(python3 --version))"; exit 2; }
[ -x "$VENV/bin/python" ] || { say "creating virtual environment $VENV"; python3 -m venv "$VENV"; }
extra=""; [ "$mode" = test ] && extra="[test]"
stamp="$VENV/.setup-stamp$extra"
want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing the project and its dependencies into $VENV (first run takes a few minutes)"
  log="$VENV/pip-install.log"
  if ! { "$VENV/bin/python" -m pip install --upgrade pip && "$VENV/bin/python" -m pip install -e ".$extra"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2; say "installing failed; the whole log is in $log"; exit 1
  fi
  echo "$want" > "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"

case "$mode" in
  app)  export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"  # the soak showed glibc's many arenas hold freed memory
        exec "$VENV/bin/anomaly-chat" ui "$@" ;;
  test) export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
        exec "$VENV/bin/python" -m pytest "$@" ;;
  *)    say "usage: ./run.sh app|test [args]"; exit 2 ;;
esac
