#!/usr/bin/env bash
# The GPU check in one go, on a machine that has only tme's portable bundle (no pnpm, no build, no network):
#   test/gpu/check.sh BUNDLE [--device INDEX|gpu] [--out DIR] [--quick] [--minutes M]
# BUNDLE: tme-<version>-linux-x64.tar.xz (unpacked into a temporary folder) or an unpacked bundle folder; the bundle
# carries this script as bin/tme-gpu-check, which needs no BUNDLE. It prints the devices, then runs lib/gpu-check.js:
# GPU-vs-CPU agreement for every score and filter, `tme example` on the device, and the match benchmark, and writes
# DIR/<machine>.json (default: the current folder). Written to finish within 8 minutes on one GPU (--minutes bounds
# the benchmark). Exit status: 0 all passed, 1 a check failed, 2 the check could not run.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
  bundle=$1
  shift
elif [ -f "$here/../lib/gpu-check.js" ]; then
  bundle=$(cd "$here/.." && pwd)
else
  echo "usage: $0 BUNDLE [--device INDEX|gpu] [--out DIR] [--quick] [--minutes M]" >&2
  exit 2
fi

if [ -f "$bundle" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/tme-gpu-check.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  tar -xJf "$bundle" -C "$work"
  root=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
elif [ -d "$bundle" ]; then
  root=$(cd "$bundle" && pwd)
else
  echo "$0: $bundle: no such bundle (a tme-*.tar.xz or an unpacked folder)" >&2
  exit 2
fi
if [ ! -x "$root/bin/tme" ] || [ ! -f "$root/lib/gpu-check.js" ]; then
  echo "$0: $bundle: not a tme bundle with the GPU check (bin/tme, lib/gpu-check.js); build it with pnpm bundle" >&2
  exit 2
fi

echo "== $(cat "$root/VERSIONS" | tr '\n' ';' | sed 's/;$//')"
if command -v nvidia-smi >/dev/null 2>&1; then
  echo "== nvidia-smi"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fi
echo "== tme devices"
"$root/bin/tme" devices
# A GPU node whose NVIDIA driver has no Vulkan manifest where the loader looks (a container given only the compute
# capability, a driver in a non-standard prefix): find the driver's Vulkan library and name it in a manifest of
# our own, unless the caller chose the drivers (VK_DRIVER_FILES / VK_ICD_FILENAMES).
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && ! "$root/bin/tme" devices --json | grep -q '"kind": "gpu"'; then
  echo "== no Vulkan GPU listed: looking for the NVIDIA driver's Vulkan library"
  lib=""
  for cand in $(ldconfig -p 2>/dev/null | sed -n 's/.*lib\(GLX\|EGL\)_nvidia\.so\.0 .*=> //p') \
      /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0 /usr/local/nvidia/lib64/libGLX_nvidia.so.0 \
      /usr/lib/x86_64-linux-gnu/libEGL_nvidia.so.0 /usr/lib64/libEGL_nvidia.so.0; do
    if [ -f "$cand" ]; then lib=$cand; break; fi
  done
  echo "NVIDIA manifests: $(find /usr/share/vulkan /etc/vulkan /usr/local/share/vulkan -name '*nvidia*.json' 2>/dev/null | tr '\n' ' ')"
  echo "NVIDIA Vulkan library: ${lib:-none found}"
  if [ -n "$lib" ]; then
    icd_dir=$(mktemp -d "${TMPDIR:-/tmp}/tme-icd.XXXXXX")
    printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$lib" >"$icd_dir/nvidia_icd.json"
    export VK_DRIVER_FILES="$icd_dir/nvidia_icd.json"
    echo "== tme devices with VK_DRIVER_FILES=$VK_DRIVER_FILES"
    "$root/bin/tme" devices
  fi
fi
echo "== checks"
exec "$root/lib/node" "$root/lib/gpu-check.js" "$@"
