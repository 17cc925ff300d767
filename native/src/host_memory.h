// The host memory a tme process may still take. /proc/meminfo's MemAvailable is the whole machine's; a SLURM job's
// --mem, a container's limit or a systemd slice is enforced by the process's cgroup, which the kernel OOM-kills
// past its limit without a word. So the room is the smaller of MemAvailable and, at every level of the cgroup
// path, limit - (usage - inactive file cache) (the cache is reclaimed before the limit kills).
#pragma once
#include <limits>
#include <string>

namespace tme {

struct HostMemory {
  double memAvailable = 0;  // /proc/meminfo MemAvailable (the physical memory where it is missing)
  // The tightest cgroup level's room and limit; +inf and "" where no memory limit applies.
  double cgroupRoom = std::numeric_limits<double>::infinity();
  double cgroupLimit = std::numeric_limits<double>::infinity();
  std::string cgroupPath;  // the limiting level, as /proc/self/cgroup names it, e.g. /slurm/uid_1/job_42
  double available() const { return memAvailable < cgroupRoom ? memAvailable : cgroupRoom; }
};

// procRoot and cgroupRoot: "/proc" and "/sys/fs/cgroup" (other roots: tests on a fake tree). cgroup v2 (the unified
// hierarchy: memory.max, memory.current, memory.stat inactive_file) and v1 (the memory controller:
// memory.limit_in_bytes, memory.usage_in_bytes, memory.stat total_inactive_file).
HostMemory readHostMemory(const std::string& procRoot = "/proc", const std::string& cgroupRoot = "/sys/fs/cgroup");

// readHostMemory().available().
double availableHostBytes();

}  // namespace tme
