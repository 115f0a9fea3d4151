// nas._C: the pybind11 module. It carries build facts only; every tensor op is
// reached through torch.ops.nas.* (registered by ops.cpp and the kernel files
// linked into this same library), so no torch header is needed here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "enumerate_cancel.h"

namespace py = pybind11;

namespace {

py::dict build_info() {
  py::dict info;
  std::vector<std::string> backends{"cpu"};
  std::vector<std::string> archs;
#ifdef NAS_WITH_CUDA
  backends.emplace_back("cuda");
  std::string s = NAS_CUDA_ARCHS, cur;
  for (char c : s + ",") {
    if (c == ',') {
      if (!cur.empty()) archs.push_back("sm_" + cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
#endif
  info["backends"] = backends;
  info["cuda_archs"] = archs;
  info["torch_version"] = std::string(NAS_TORCH_VERSION);
  info["compiler"] = std::string(__VERSION__);
  return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "nas native library: registers the torch.ops.nas operators";
  m.def("build_info", &build_info,
        "Compiled backends (cpu, cuda), CUDA arch list and the torch version built against.");
  m.def(
      "_set_enumerate_cancel", [](bool on) { nas::enumerate::cancel_flag().store(on); },
      "Ask running branch-and-bound searches to stop (True) or clear the request (False).");
}
