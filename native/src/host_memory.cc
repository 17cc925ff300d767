#include "host_memory.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

namespace tme {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The first whitespace-separated number of a file ("max" and anything unreadable: +inf).
double readNumber(const std::string& file) {
  std::ifstream in(file);
  std::string word;
  if (!(in >> word) || word == "max") return kInf;
  try {
    return std::stod(word);
  } catch (...) {
    return kInf;
  }
}

bool exists(const std::string& file) { return std::ifstream(file).good(); }

// A memory.stat field ("key value" lines); 0 where it is missing.
double statField(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  std::string k;
  double v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

// "/a/b/c" -> "/a/b/c", "/a/b", "/a", "/".
std::vector<std::string> levels(std::string path) {
  std::vector<std::string> out;
  if (path.empty() || path[0] != '/') path = "/" + path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  for (;;) {
    out.push_back(path);
    if (path == "/") break;
    const size_t slash = path.find_last_of('/');
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
  return out;
}

std::string join(const std::string& root, const std::string& level) { return level == "/" ? root : root + level; }

}  // namespace

HostMemory readHostMemory(const std::string& procRoot, const std::string& cgroupRoot) {
  HostMemory m;
  m.memAvailable = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  {
    std::ifstream meminfo(procRoot + "/meminfo");
    std::string key, unit;
    double kib = 0;
    while (meminfo >> key >> kib >> unit)
      if (key == "MemAvailable:") {
        m.memAvailable = kib * 1024.0;
        break;
      }
  }
  // /proc/self/cgroup: "id:controllers:path" per hierarchy. A v1 memory controller is where memory is accounted on a
  // hybrid system; otherwise the unified (v2) line "0::path".
  std::ifstream cgroups(procRoot + "/self/cgroup");
  std::string line, v1Path, v2Path;
  bool v1 = false, v2 = false;
  while (std::getline(cgroups, line)) {
    const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    std::stringstream list(controllers);
    std::string c;
    while (std::getline(list, c, ','))
      if (c == "memory") v1 = true, v1Path = path;
    if (controllers.empty()) v2 = true, v2Path = path;
  }
  if (!v1 && !v2) return m;
  for (const std::string& level : levels(v1 ? v1Path : v2Path)) {
    const std::string dir = v1 ? join(cgroupRoot + "/memory", level) : join(cgroupRoot, level);
    const std::string limitFile = dir + (v1 ? "/memory.limit_in_bytes" : "/memory.max");
    if (!exists(limitFile)) continue;  // the root of v2, or a level outside this mount namespace
    double limit = readNumber(limitFile);
    if (v1 && limit >= 0x1p60) limit = kInf;  // v1 writes "no limit" as a page-rounded 2^63
    if (!(limit < kInf)) continue;
    const double usage = readNumber(dir + (v1 ? "/memory.usage_in_bytes" : "/memory.current"));
    const double cache = statField(dir + "/memory.stat", v1 ? "total_inactive_file" : "inactive_file");
    const double used = usage < kInf ? std::max(0.0, usage - cache) : 0.0;
    const double room = std::max(0.0, limit - used);
    if (room < m.cgroupRoom) {
      m.cgroupRoom = room;
      m.cgroupLimit = limit;
      m.cgroupPath = level;
    }
  }
  return m;
}

double availableHostBytes() { return readHostMemory().available(); }

}  // namespace tme
