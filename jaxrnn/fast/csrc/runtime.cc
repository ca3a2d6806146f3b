// What the kernels keep for the whole process: the caches' sizes, the
// Governor's thread cap and the pool of workspaces.

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "gemm.h"
#include "threads.h"

namespace jaxrnn {

// A cache's size from sysfs: level 1 data or level 2 ("Data" or "Unified").
int64_t sysfs_cache(int level) {
  for (int i = 0; i < 8; ++i) {
    std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream lv(dir + "level"), ty(dir + "type"), sz(dir + "size");
    int l = 0;
    std::string type, size;
    if (!(lv >> l) || !(ty >> type) || !(sz >> size)) continue;
    if (l != level || type == "Instruction") continue;
    int64_t n = std::atoll(size.c_str());
    if (!size.empty() && (size.back() == 'K')) n *= 1024;
    if (!size.empty() && (size.back() == 'M')) n *= 1024 * 1024;
    return n;
  }
  return 0;
}

Tiling detect() {
  int64_t l1 = 0, l2 = 0;
#if defined(_SC_LEVEL1_DCACHE_SIZE)
  l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
  l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
  if (l1 <= 0) l1 = sysfs_cache(1);
  if (l2 <= 0) l2 = sysfs_cache(2);
  // Unknown: the smallest of the x86-64 and aarch64 cores of the last decade.
  return {l1 > 0 ? l1 : 32 << 10, l2 > 0 ? l2 : 512 << 10};
}

const Tiling& tiling() {
  static const Tiling t = detect();
  return t;
}

Governor& governor() {
  static Governor g;
  return g;
}

std::mutex pool_mutex;
std::vector<Workspace*>& pool() {
  static std::vector<Workspace*> p;
  return p;
}
Lease::Lease() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  if (pool().empty()) {
    ws_ = new Workspace;
  } else {
    ws_ = pool().back();
    pool().pop_back();
  }
  ws_->failed = false;
}
Lease::~Lease() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  pool().push_back(ws_);
}

}  // namespace jaxrnn
