// Every schema of the `nas` operator library, once. Each device registers its own
// implementation under its dispatch key (csrc/cpu/<op>.cpp, csrc/cuda/<op>.cpp);
// fakes and autograd are attached in Python (python/nas/ops/<op>.py).
#include <torch/library.h>

TORCH_LIBRARY(nas, m) {
  // indices: [n] int64 cell indices -> [n, num_edges] int64 op codes, the mixed-radix
  // digits of each index in base num_ops, last edge fastest.
  m.def("decode_cells(Tensor indices, int num_ops, int num_edges) -> Tensor");

  // The fused DARTS mixed op on x: [B, N, D]: y = sum_k softmax(alpha)_k op_k(x), where
  // op_codes[k] indexes nas.all_ops(); the parameter-free ops (avg/max pool, skip, zero)
  // are computed inline, the parametric ones are param_outputs (each [B, N, D], in op
  // order). x: float32/64, bfloat16 or float16 (half types accumulate in float32);
  // alpha: x's dtype, or float32 for a half-type x. Backward returns (dx, dalpha,
  // [d param_outputs]); output_mask says which of the three to compute (one not asked
  // for comes back empty: [0], or []).
  m.def("mixed_op(Tensor x, Tensor alpha, int[] op_codes, Tensor[] param_outputs) -> Tensor");
  m.def(
      "mixed_op_backward(Tensor grad, Tensor x, Tensor alpha, int[] op_codes, "
      "Tensor[] param_outputs, bool[3] output_mask=[True, True, True]) "
      "-> (Tensor, Tensor, Tensor[])");
  // Exhaustive scans of a cell search space (nas/enumerate.py; kernels in
  // csrc/cpu/enumerate_<op>.cpp, csrc/cuda/enumerate_<op>.{cu,cpp}). op_features:
  // [num_ops, F] float64 per-op features; a cell's features are their sums over its
  // edges, its score bias + coeffs . features; low/high: [F] inclusive bounds
  // (+-inf for none); zero_op: code of the zero op or -1; cells [start, start+count).
  // connected_only / distinct: keep only cells whose output depends on the input /
  // whose every non-zero edge is live (one per pruned cell); see filter_passes in
  // csrc/enumerate_cells.h. Both off by default.
  m.def(
      "enumerate_score_cells(Tensor op_features, Tensor coeffs, float bias, int num_nodes, "
      "int zero_op, bool prune_dead, int start, int count) -> (Tensor, Tensor)");
  m.def(
      "enumerate_top_k(Tensor op_features, Tensor coeffs, float bias, Tensor low, Tensor high, "
      "int num_nodes, int zero_op, bool prune_dead, int start, int count, int k, bool largest, "
      "bool connected_only=False, bool distinct=False) -> (Tensor, Tensor, Tensor)");
  m.def(
      "enumerate_count(Tensor op_features, Tensor coeffs, float bias, Tensor low, Tensor high, "
      "int num_nodes, int zero_op, bool prune_dead, int start, int count, int bins, "
      "float hist_min, float hist_max, bool connected_only=False, bool distinct=False) "
      "-> (Tensor, Tensor)");
  m.def(
      "enumerate_pareto(Tensor op_features, Tensor objectives, Tensor low, Tensor high, "
      "int num_nodes, int zero_op, bool prune_dead, int start, int count, "
      "bool connected_only=False, bool distinct=False) -> (Tensor, Tensor, Tensor)");
  m.def(
      "enumerate_search_top_k(Tensor op_features, Tensor coeffs, float bias, Tensor low, "
      "Tensor high, int num_nodes, int k, bool largest, int max_nodes, int zero_op=-1, "
      "bool connected_only=False, bool distinct=False) -> (Tensor, Tensor, Tensor)");
}
