// The argument checks common to the nas::enumerate_* ops; each op's full entry check
// is csrc/enumerate_<op>_checks.h, called by its CPU and CUDA registrations alike
// (torch headers; never included by a .cu file). The tables are tiny: checks that read
// values do so on a host copy.
#pragma once
#include <ATen/core/Tensor.h>

#include <cmath>
#include <cstdint>

#include "decode_cells.h"
#include "enumerate_cells.h"

namespace nas::enumerate {

// Checks the cost table, the score coefficients and the scan range; returns the
// number of edges.
inline int64_t check_scan_args(const at::Tensor& op_features,  // [num_ops, F] float64
                               const at::Tensor& coeffs,       // [F] float64 (or [R, F])
                               double bias, int64_t num_nodes, int64_t zero_op, int64_t start,
                               int64_t count) {
  TORCH_CHECK_VALUE(op_features.dim() == 2, "op_features must be a 2-D tensor [num_ops, F], got ",
                    op_features.sizes());
  TORCH_CHECK_VALUE(op_features.scalar_type() == at::kDouble, "op_features must be float64, got ",
                    op_features.scalar_type());
  const int64_t num_ops = op_features.size(0), nf = op_features.size(1);
  TORCH_CHECK_VALUE(num_ops >= 1, "op_features has no rows: the op list is empty");
  TORCH_CHECK_VALUE(nf >= 1, "op_features has no feature columns, got ", op_features.sizes());
  TORCH_CHECK_VALUE(coeffs.scalar_type() == at::kDouble, "coeffs must be float64, got ",
                    coeffs.scalar_type());
  TORCH_CHECK_VALUE(coeffs.dim() >= 1 && coeffs.size(-1) == nf, "coeffs must have ", nf,
                    " entries per row (op_features has ", nf, " columns), got shape ",
                    coeffs.sizes());
  TORCH_CHECK_VALUE(std::isfinite(bias), "bias must be finite, got ", bias);
  TORCH_CHECK_VALUE(num_nodes >= 2 && num_nodes <= kMaxNodes, "num_nodes must be in [2, ",
                    kMaxNodes, "], got ", num_nodes);
  TORCH_CHECK_VALUE(zero_op >= -1 && zero_op < num_ops, "zero_op must be -1 (none) or in [0, ",
                    num_ops, "), got ", zero_op);
  const int64_t num_edges = num_nodes * (num_nodes - 1) / 2;
  const int64_t size = space_size_or_neg1(num_ops, num_edges);
  TORCH_CHECK_VALUE(start >= 0, "start must be >= 0, got ", start);
  TORCH_CHECK_VALUE(count >= 0, "count must be >= 0, got ", count);
  TORCH_CHECK_VALUE(count <= INT64_MAX - start, "start + count overflows int64: start ", start,
                    ", count ", count);
  TORCH_CHECK_VALUE(size < 0 || start + count <= size, "range [", start, ", ", start + count,
                    ") is past num_cells = ", num_ops, "**", num_edges, " = ", size);
  return num_edges;
}

// The tables must be free of NaN and infinities (a NaN score has no place in an order).
inline void check_finite(const at::Tensor& t, const char* name) {
  const at::Tensor c = t.cpu().contiguous();
  const double* p = c.const_data_ptr<double>();
  for (int64_t i = 0; i < c.numel(); ++i)
    TORCH_CHECK_VALUE(std::isfinite(p[i]), name, " must be finite, got ", p[i], " at flat index ",
                      i);
}

inline void check_bounds(const at::Tensor& low, const at::Tensor& high, int64_t nf) {
  for (const auto* t : {&low, &high}) {
    const char* name = t == &low ? "low" : "high";
    TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == nf && t->scalar_type() == at::kDouble, name,
                      " must be a float64 tensor [", nf, "] (one bound per feature), got ",
                      t->scalar_type(), " ", t->sizes());
  }
  const at::Tensor lo = low.cpu().contiguous(), hi = high.cpu().contiguous();
  const double* l = lo.const_data_ptr<double>();
  const double* h = hi.const_data_ptr<double>();
  for (int64_t f = 0; f < nf; ++f) {
    TORCH_CHECK_VALUE(!std::isnan(l[f]) && !std::isnan(h[f]), "constraint bounds of feature ", f,
                      " must not be NaN");
    TORCH_CHECK_VALUE(l[f] <= h[f], "constraint on feature ", f, " is empty: low ", l[f],
                      " > high ", h[f]);
  }
}

// The space, the score, the finite tables and (when given) the bounds.
inline void check_scan_inputs(const at::Tensor& op_features,  // [num_ops, F] float64
                              const at::Tensor& coeffs,       // [R, F] or [F] float64
                              double bias, const at::Tensor* low, const at::Tensor* high,
                              int64_t num_nodes, int64_t zero_op, int64_t start, int64_t count) {
  check_scan_args(op_features, coeffs, bias, num_nodes, zero_op, start, count);
  check_finite(op_features, "op_features");
  check_finite(coeffs, "coeffs");
  if (low) check_bounds(*low, *high, op_features.size(1));
}

inline void check_coeffs_1d(const at::Tensor& coeffs) {
  TORCH_CHECK_VALUE(coeffs.dim() == 1, "coeffs must be 1-D [F], got ", coeffs.sizes());
}

// The arguments of a scan with one score row and feature bounds (top_k, count and the
// search): each op's argument struct (enumerate_<op>_checks.h) extends it.
struct BoundedScanArgs {
  const at::Tensor &op_features, &coeffs;  // [num_ops, F], [F] float64
  double bias;
  const at::Tensor &low, &high;  // [F] float64, -inf / +inf for none
  int64_t num_nodes, zero_op;
  bool prune_dead;
  int64_t start, count;  // cells [start, start + count)
};

inline void check_bounded_scan(const BoundedScanArgs& a) {
  check_coeffs_1d(a.coeffs);
  check_scan_inputs(a.op_features, a.coeffs, a.bias, &a.low, &a.high, a.num_nodes, a.zero_op,
                    a.start, a.count);
}

}  // namespace nas::enumerate
