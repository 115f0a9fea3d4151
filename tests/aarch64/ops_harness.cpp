// Runs recorded torch.ops.nas calls on the cross-built aarch64 kernels (under qemu-user)
// and prints their outputs; tests/aarch64/run_emulated.py records the calls on x86,
// writes them here, and compares the outputs with what x86 computed.
//
// Input (stdin), one token stream: "call <name> <nargs>" then each argument:
//   t <dtype> <layout> <ndim> <dims...> <values...>   dtype f64|f32|bf16|f16|i64|bool;
//       layout c (contiguous) or t (values of the contiguous [B, D, N] tensor, passed as
//       its [B, N, D] transpose); floats as C99 hex (exact), integers in decimal
//   i <int> | f <hex double> | b <0|1> | I <n> <ints...> | B <n> <0|1...> | T <n> <t ...>
// Output: "call <name> <nouts>" then one "t ..." line per output tensor (lists flattened,
// half types printed as float32).
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/ivalue.h>
#include <ATen/core/stack.h>
#include <ATen/ops/empty.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {

at::ScalarType dtype_of(const std::string& s) {
  if (s == "f64") return at::kDouble;
  if (s == "f32") return at::kFloat;
  if (s == "bf16") return at::kBFloat16;
  if (s == "f16") return at::kHalf;
  if (s == "i64") return at::kLong;
  if (s == "bool") return at::kBool;
  std::fprintf(stderr, "ops_harness: unknown dtype %s\n", s.c_str());
  std::exit(2);
}

at::Tensor read_tensor(std::istream& in) {
  std::string dt, layout;
  int64_t ndim = 0;
  in >> dt >> layout >> ndim;
  std::vector<int64_t> dims(ndim);
  int64_t n = 1;
  for (auto& d : dims) {
    in >> d;
    n *= d;
  }
  const at::ScalarType st = dtype_of(dt);
  // Filled element by element in the target dtype (no ATen dtype conversion: torch's
  // conversion copy kernels crash under qemu-user, see tests/aarch64/run_emulated.py).
  at::Tensor t = at::empty(dims, at::TensorOptions().dtype(st));
  std::string tok;
  for (int64_t i = 0; i < n; ++i) {
    in >> tok;
    const double v = std::strtod(tok.c_str(), nullptr);
    switch (st) {
      case at::kDouble:
        t.mutable_data_ptr<double>()[i] = v;
        break;
      case at::kFloat:
        t.mutable_data_ptr<float>()[i] = static_cast<float>(v);
        break;
      case at::kBFloat16:
        t.mutable_data_ptr<c10::BFloat16>()[i] = c10::BFloat16(static_cast<float>(v));
        break;
      case at::kHalf:
        t.mutable_data_ptr<c10::Half>()[i] = c10::Half(static_cast<float>(v));
        break;
      case at::kBool:
        t.mutable_data_ptr<bool>()[i] = std::strtoll(tok.c_str(), nullptr, 10) != 0;
        break;
      default:
        t.mutable_data_ptr<int64_t>()[i] = std::strtoll(tok.c_str(), nullptr, 10);
    }
  }
  if (layout == "t") t = t.transpose(1, 2);  // [B, D, N] storage seen as [B, N, D]
  return t;
}

double value_at(const at::Tensor& t, int64_t i) {
  switch (t.scalar_type()) {
    case at::kDouble:
      return t.const_data_ptr<double>()[i];
    case at::kFloat:
      return t.const_data_ptr<float>()[i];
    case at::kBFloat16:
      return static_cast<float>(t.const_data_ptr<c10::BFloat16>()[i]);
    case at::kHalf:
      return static_cast<float>(t.const_data_ptr<c10::Half>()[i]);
    default:
      return 0;
  }
}

// Storage offset (elements) of logical element i of t, row-major over t's sizes: the
// harness reads strided outputs itself (no ATen copy kernel, as above).
int64_t offset_of(const at::Tensor& t, int64_t i) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (i % t.size(d)) * t.stride(d);
    i /= t.size(d);
  }
  return off;
}

void print_tensor(const at::Tensor& t) {
  const at::ScalarType st = t.scalar_type();
  const bool is_float = st != at::kLong && st != at::kBool;
  const char* name = st == at::kDouble  ? "f64"
                     : st == at::kLong  ? "i64"
                     : st == at::kBool  ? "bool"
                     : st == at::kFloat ? "f32"
                     : st == at::kHalf  ? "f16"
                                        : "bf16";
  std::printf("t %s c %" PRId64, name, t.dim());
  for (int64_t d : t.sizes()) std::printf(" %" PRId64, d);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (is_float) {
      std::printf(" %a", value_at(t, offset_of(t, i)));
    } else if (st == at::kBool) {
      std::printf(" %d", t.const_data_ptr<bool>()[offset_of(t, i)] ? 1 : 0);
    } else {
      std::printf(" %" PRId64, t.const_data_ptr<int64_t>()[offset_of(t, i)]);
    }
  }
  std::printf("\n");
}

// "<n> <v...>": an int[] or bool[] argument.
template <typename T>
c10::List<T> read_list(std::istream& in) {
  int n = 0;
  in >> n;
  c10::List<T> l;
  for (int i = 0; i < n; ++i) {
    int64_t v = 0;
    in >> v;
    l.push_back(static_cast<T>(v));
  }
  return l;
}

}  // namespace

int main() {
  std::string word;
  int calls = 0;
  while (std::cin >> word) {
    if (word != "call") {
      std::fprintf(stderr, "ops_harness: expected 'call', got %s\n", word.c_str());
      return 2;
    }
    std::string name;
    int nargs = 0;
    std::cin >> name >> nargs;
    torch::jit::Stack stack;
    for (int a = 0; a < nargs; ++a) {
      std::string kind;
      std::cin >> kind;
      if (kind == "t") {
        stack.emplace_back(read_tensor(std::cin));
      } else if (kind == "i") {
        int64_t v;
        std::cin >> v;
        stack.emplace_back(v);
      } else if (kind == "f") {
        std::string tok;
        std::cin >> tok;
        stack.emplace_back(std::strtod(tok.c_str(), nullptr));
      } else if (kind == "b") {
        int v;
        std::cin >> v;
        stack.emplace_back(v != 0);
      } else if (kind == "I") {
        stack.emplace_back(read_list<int64_t>(std::cin));
      } else if (kind == "B") {
        stack.emplace_back(read_list<bool>(std::cin));
      } else if (kind == "T") {
        int n;
        std::cin >> n;
        c10::List<at::Tensor> l;
        for (int i = 0; i < n; ++i) {
          std::string t;
          std::cin >> t;
          l.push_back(read_tensor(std::cin));
        }
        stack.emplace_back(l);
      } else {
        std::fprintf(stderr, "ops_harness: unknown argument kind %s\n", kind.c_str());
        return 2;
      }
    }
    const auto op = c10::Dispatcher::singleton().findSchemaOrThrow(("nas::" + name).c_str(), "");
    // Arguments left at their schema default were not recorded: push the defaults.
    const auto& schema_args = op.schema().arguments();
    for (size_t a = stack.size(); a < schema_args.size(); ++a) {
      stack.push_back(*schema_args[a].default_value());
    }
    op.callBoxed(&stack);
    std::vector<at::Tensor> outs;
    for (const c10::IValue& v : stack) {
      if (v.isTensor()) {
        outs.push_back(v.toTensor());
      } else if (v.isTensorList()) {
        for (const at::Tensor& t : v.toTensorVector()) outs.push_back(t);
      }
    }
    std::printf("call %s %zu\n", name.c_str(), outs.size());
    for (const at::Tensor& t : outs) print_tensor(t);
    ++calls;
  }
  std::fprintf(stderr, "ops_harness: %d calls\n", calls);
  return 0;
}
