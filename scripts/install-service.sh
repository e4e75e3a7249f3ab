#!/usr/bin/env bash
# Install the Havatar systemd user units for the current user, so they start at boot.
#
#   scripts/install-service.sh [--robot]    the robot (systemd/havatar-robot.service)
#   scripts/install-service.sh --server     the relay server outside Docker (havatar-relay.service)
#   scripts/install-service.sh --dry-run    print what it would do, change nothing
#   sudo scripts/install-service.sh --robot --system
#                                           the robot as a system unit for the user who ran
#                                           sudo, confined to its devices (DeviceAllow=)
#
# Writes the unit with this workspace's path into ~/.config/systemd/user/, makes the
# private settings file ~/.config/havatar/robot.env (or relay.env) if there is none,
# enables and starts the unit, and turns on lingering (loginctl enable-linger) so that
# the user's units start at boot without anyone logging in. With --system: the unit goes
# to /etc/systemd/system/ (with the user's home for %h) with the drop-in
# systemd/havatar-robot-devices.conf (User=, SupplementaryGroups=, DeviceAllow=). Run it
# again after moving the workspace. Build the workspace first (scripts/setup.sh --no-run).
set -euo pipefail

WS=$(cd "$(dirname "$0")/.." && pwd)
ROLE=robot
DRY_RUN=0
SYSTEM=0
for arg in "$@"; do
  case $arg in
    --robot) ROLE=robot ;;
    --server) ROLE=relay ;;
    --dry-run) DRY_RUN=1 ;;
    --system) SYSTEM=1 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-service: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

UNIT=havatar-$ROLE.service
UNIT_DIR=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user
HOME_DIR=$HOME
SYSTEMCTL=(systemctl --user)
if [ "$SYSTEM" -eq 1 ]; then
  [ "$ROLE" = robot ] || { echo "install-service: --system is for the robot (--robot)" >&2; exit 2; }
  # the robot's user: whoever ran sudo; %h in a system unit would be root's home
  ROBOT_USER=${SUDO_USER:-${USER:-$(id -un)}}
  HOME_DIR=$(getent passwd "$ROBOT_USER" | cut -d: -f6 || true)
  [ -n "$HOME_DIR" ] || HOME_DIR=$HOME
  UNIT_DIR=/etc/systemd/system
  SYSTEMCTL=(systemctl)
  if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "install-service: --system writes to $UNIT_DIR: run it with sudo" >&2; exit 1
  fi
  case $ROBOT_USER in
    root|*[!a-zA-Z0-9_.-]*) echo "install-service: run it with sudo from the robot's user, not as $ROBOT_USER" >&2; exit 1 ;;
  esac
fi
SETTINGS_DIR=$HOME_DIR/.config/havatar
SETTINGS=$SETTINGS_DIR/$ROLE.env

# run a command, or only show it with --dry-run
run() {
  if [ "$DRY_RUN" -eq 1 ]; then echo "would run: $*"; else "$@"; fi
}

# write stdin to a file (mode $2), or only show it with --dry-run
write() {
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "would write $1 (mode $2):"; sed 's/^/    /'
  else
    (umask 077; cat > "$1.tmp") && chmod "$2" "$1.tmp" && mv "$1.tmp" "$1"
  fi
}

case $WS in
  *[[:space:]#%\\\"\']*) echo "install-service: the workspace path $WS holds a character a unit cannot carry" >&2; exit 1 ;;
esac
[ -f "$WS/systemd/$UNIT" ] || { echo "install-service: $WS/systemd/$UNIT is missing" >&2; exit 1; }
if [ ! -f "$WS/install/setup.bash" ]; then
  echo "install-service: note: $WS is not built yet; run scripts/setup.sh --no-run before starting"
fi

case $HOME_DIR in
  *[[:space:]#%\\\"\']*) echo "install-service: the home $HOME_DIR holds a character a unit cannot carry" >&2; exit 1 ;;
esac

run mkdir -p "$UNIT_DIR" "$SETTINGS_DIR" "$HOME_DIR/.local/state/havatar/logs" "$HOME_DIR/.ros"
if [ "$SYSTEM" -eq 1 ]; then
  sed -e "s#@WORKSPACE@#$WS#g" -e "s#%h#$HOME_DIR#g" "$WS/systemd/$UNIT" | write "$UNIT_DIR/$UNIT" 644
  run mkdir -p "$UNIT_DIR/$UNIT.d"
  sed "s#@USER@#$ROBOT_USER#g" "$WS/systemd/havatar-robot-devices.conf" | write "$UNIT_DIR/$UNIT.d/devices.conf" 644
else
  sed "s#@WORKSPACE@#$WS#g" "$WS/systemd/$UNIT" | write "$UNIT_DIR/$UNIT" 644
fi

if [ -e "$SETTINGS" ]; then
  echo "keeping $SETTINGS"
elif [ "$ROLE" = robot ]; then
  write "$SETTINGS" 600 <<'EOF'
# Settings of havatar-robot.service (read by systemd; only this user can read this file).
# Launch arguments of robot.launch.py (run_robot --show-args lists them), e.g.
#   HAVATAR_ROBOT_ARGS=serial_port:=/dev/serial/by-id/usb-Silicon_Labs... robot_id:=tank1
HAVATAR_ROBOT_ARGS=
# Token of the local web UI; empty: generated into ~/.config/havatar/access_token
HAVATAR_ACCESS_TOKEN=
# With a cloud relay (relay_url:=wss://... in HAVATAR_ROBOT_ARGS): the robot's token and
# its MediaMTX password
HAVATAR_ROBOT_TOKEN=
HAVATAR_STREAM_PASSWORD=
EOF
else
  write "$SETTINGS" 600 <<EOF
# Settings of havatar-relay.service (read by systemd; only this user can read this file).
# The accounts (robots and users with their tokens; docker/relay.yaml.example shows the format)
HAVATAR_RELAY_CONFIG=$SETTINGS_DIR/relay.yaml
# Shared state in Redis (Debian: apt install redis-server); empty: in memory, one instance
HAVATAR_RELAY_REDIS_URL=
HAVATAR_RELAY_PORT=8090
# MediaMTX's API and metrics: the token allowed to use them
HAVATAR_RELAY_ADMIN_TOKEN=
EOF
fi

if [ "$SYSTEM" -eq 1 ]; then
  # what root made in the user's home belongs to the user
  run chown "$ROBOT_USER:" "$SETTINGS_DIR" "$SETTINGS" "$HOME_DIR/.local/state/havatar" \
    "$HOME_DIR/.local/state/havatar/logs" "$HOME_DIR/.ros"
  if [ -e "$HOME_DIR/.config/systemd/user/$UNIT" ]; then
    echo "install-service: the user unit runs the robot too: as $ROBOT_USER, run"
    echo "  systemctl --user disable --now $UNIT; rm ~/.config/systemd/user/$UNIT"
  fi
fi
run "${SYSTEMCTL[@]}" daemon-reload
run "${SYSTEMCTL[@]}" enable "$UNIT"
if [ "$ROLE" = relay ] && [ ! -f "$SETTINGS_DIR/relay.yaml" ]; then
  echo "install-service: write the accounts to $SETTINGS_DIR/relay.yaml (see docker/relay.yaml.example), then:"
  echo "  systemctl --user start $UNIT"
else
  run "${SYSTEMCTL[@]}" restart "$UNIT"
fi
if [ "$SYSTEM" -eq 1 ]; then
  echo "done: $UNIT (system unit, user $ROBOT_USER); its log: journalctl -u $UNIT; settings: $SETTINGS"
  exit 0
fi
# without lingering a user's units start at their first login, not at boot
ME=${USER:-$(id -un)}
if [ "$(loginctl show-user "$ME" --property=Linger --value 2>/dev/null || true)" != yes ]; then
  run loginctl enable-linger "$ME" \
    || echo "install-service: run 'sudo loginctl enable-linger $ME' so that $UNIT starts at boot"
fi
echo "done: $UNIT; its log: journalctl --user -u $UNIT; settings: $SETTINGS"
