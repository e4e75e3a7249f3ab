# Source this file to use the Havatar workspace: ROS (system or the wheel venv), the built
# packages, and the workspace's tools (MediaMTX) on PATH.  `. scripts/env.sh`
_havatar_ws=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_havatar_opts=$-
set +u  # ROS and colcon setup scripts read unset variables
if [ -f "$_havatar_ws/tools/ros-distro" ]; then
  . "/opt/ros/$(cat "$_havatar_ws/tools/ros-distro")/setup.bash"
fi
if [ -f "$_havatar_ws/tools/venv/bin/activate" ]; then
  . "$_havatar_ws/tools/venv/bin/activate"
  [ -f "$_havatar_ws/tools/venv/local_setup.bash" ] && . "$_havatar_ws/tools/venv/local_setup.bash"
fi
if [ -f "$_havatar_ws/install/setup.bash" ]; then
  . "$_havatar_ws/install/setup.bash"
fi
case ":$PATH:" in *":$_havatar_ws/tools/bin:"*) ;; *) export PATH="$_havatar_ws/tools/bin:$PATH";; esac
export HAVATAR_WORKSPACE="$_havatar_ws"
case $_havatar_opts in *u*) set -u;; esac
unset _havatar_ws _havatar_opts
