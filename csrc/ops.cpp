// Every schema of the `nas` operator library, once. Each device registers its own
// implementation under its dispatch key (csrc/cpu/<op>.cpp, csrc/cuda/<op>.cpp);
// fakes and autograd are attached in Python (python/nas/ops/<op>.py).
#include <torch/library.h>

TORCH_LIBRARY(nas, m) {
  // indices: [n] int64 cell indices -> [n, num_edges] int64 op codes, the mixed-radix
  // digits of each index in base num_ops, last edge fastest.
  m.def("decode_cells(Tensor indices, int num_ops, int num_edges) -> Tensor");
}
