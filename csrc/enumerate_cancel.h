// A request to stop a running nas::enumerate_search_top_k, set from Python
// (nas._C._set_enumerate_cancel, see nas/enumerate.py): the ops run with the GIL
// released, so a Ctrl-C or a time limit reaches them through this flag, polled every
// few thousand search nodes. One flag per process: it stops every search running.
#pragma once
#include <atomic>

namespace nas::enumerate {

inline std::atomic<bool>& cancel_flag() {
  static std::atomic<bool> flag{false};
  return flag;
}

}  // namespace nas::enumerate
