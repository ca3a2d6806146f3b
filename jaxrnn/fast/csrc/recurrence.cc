// The compiled CPU kernels of the fast path, called through the XLA FFI
// (jaxrnn/fast/_cpu_build.py builds and loads this file, _cpu.py calls it).
//
// Two calls run one direction of one layer over all T steps, for the Elman
// RNN and the IndRNN (tanh, sigmoid, relu), the LSTM and the GRU:
// - jaxrnn_forward: the input projection and the recurrence (forward.h);
// - jaxrnn_backward: the reverse recurrence, the weight and bias gradients
//   and the input gradient (backward.h).
// Every matmul of the layer runs on one microkernel (gemm.h), on threads
// that meet at a barrier per step (threads.h), with the cells' arithmetic
// fused into the matmuls' epilogues (cells.h); the vector instructions are
// those of one isa_*.h, chosen by the compiler flags. Everything is float32,
// but for the forward call's products under bf16 (gemm_bf16.h).
// tests/fast/test_cpu.py checks both calls against the reference scan.

#include <string>
#include <vector>

#include "backward.h"
#include "forward.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

XLA_FFI_REGISTER_ENUM_ATTR_DECODING(jaxrnn::Cell);
XLA_FFI_REGISTER_ENUM_ATTR_DECODING(jaxrnn::Act);
XLA_FFI_REGISTER_ENUM_ATTR_DECODING(jaxrnn::Mm);

namespace jaxrnn {

namespace {

// Shape checks: a mismatch is a bug in _cpu.py, reported, never a crash.
template <class Dims>
ffi::Error expect(Dims dims, std::vector<int64_t> shape, const char* name) {
  if (dims.size() == shape.size() && std::equal(dims.begin(), dims.end(), shape.begin()))
    return ffi::Error::Success();
  std::string want, got;
  for (auto d : shape) want += std::to_string(d) + ",";
  for (auto d : dims) got += std::to_string(d) + ",";
  return ffi::Error::InvalidArgument(std::string("jaxrnn cpu kernel: ") + name +
                                     " must have shape [" + want + "], got [" + got + "]");
}

// w_hh's: [G*H, H], or a diagonal cell's [H].
std::vector<int64_t> recurrent_shape(Cell c, int64_t H) {
  if (diagonal(c)) return {H};
  return {num_gates(c) * H, H};
}

#define CHECK(expr)              \
  do {                           \
    ffi::Error e_ = (expr);      \
    if (e_.failure()) return e_; \
  } while (0)

using F32 = ffi::Buffer<ffi::F32>;
using OutF32 = ffi::ResultBuffer<ffi::F32>;

// Run a Forward or Backward, with the thread count the Governor allows and
// a workspace from the pool; report its waits; turn failures into errors.
template <class K>
ffi::Error launch(K& k, int64_t threads, int64_t chunk, int64_t k_slice) {
  k.force_tc = chunk, k.force_kc = k_slice;
  Lease lease;
  int used = 1;
  int64_t waited = 0;
  double expected = 0;
  const int64_t start = now_ns();
  const int status = k.run(*lease, governor().limit(int(threads)), used, waited, expected);
  if (status == 1)
    return ffi::Error::Internal("jaxrnn cpu kernel: could not start " +
                                std::to_string(used) +
                                " threads (set JAXRNN_THREADS lower)");
  if (status == 2)
    return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                      "jaxrnn cpu kernel: out of memory for the workspace");
  governor().report(used, now_ns() - start, waited, expected);
  return ffi::Error::Success();
}

template <Cell C, Mm M>
ffi::Error forward_cell(F32 x, F32 w_ih, F32 w_hh, F32 b, F32 b_hn, F32 h0, F32 c0,
                        F32 mask, OutF32 hs, OutF32 cs, OutF32 saved, OutF32 h_t,
                        OutF32 c_t, Act act, int64_t threads, bool save,
                        int64_t chunk, int64_t k_slice) {
  auto d = x.dimensions();
  if (d.size() != 3) return ffi::Error::InvalidArgument("jaxrnn cpu kernel: x must be [T, B, D]");
  const int64_t T = d[0], B = d[1], D = d[2], G = num_gates(C), H = h0.dimensions().back();
  CHECK(expect(h0.dimensions(), {B, H}, "h0"));
  CHECK(expect(w_ih.dimensions(), {G * H, D}, "w_ih"));
  CHECK(expect(w_hh.dimensions(), recurrent_shape(C, H), "w_hh"));
  CHECK(expect(b.dimensions(), {G * H}, "b"));
  CHECK(expect(mask.dimensions(), {T, B}, "mask"));
  if (C == Cell::LSTM) CHECK(expect(c0.dimensions(), {B, H}, "c0"));
  if (C == Cell::GRU) CHECK(expect(b_hn.dimensions(), {H}, "b_hn"));
  CHECK(expect(hs->dimensions(), {T, B, H}, "hs"));
  Forward<C, M> k;
  k.T = T, k.B = B, k.D = D, k.H = H, k.act = act, k.save = save;
  k.x = x.typed_data(), k.w_ih = w_ih.typed_data(), k.w_hh = w_hh.typed_data();
  k.bias = b.typed_data(), k.b_hn = b_hn.typed_data(), k.h0 = h0.typed_data();
  k.c0 = c0.typed_data(), k.mask = mask.typed_data();
  k.hs = hs->typed_data(), k.cs = cs->typed_data(), k.saved = saved->typed_data();
  k.h_t = h_t->typed_data(), k.c_t = c_t->typed_data();
  return launch(k, threads, chunk, k_slice);
}

template <Mm M>
ffi::Error forward_mm(F32 x, F32 w_ih, F32 w_hh, F32 b, F32 b_hn, F32 h0, F32 c0, F32 mask,
                      OutF32 hs, OutF32 cs, OutF32 saved, OutF32 h_t, OutF32 c_t, Cell cell,
                      Act act, int64_t threads, bool save, int64_t chunk, int64_t k_slice) {
#define ARGS \
  x, w_ih, w_hh, b, b_hn, h0, c0, mask, hs, cs, saved, h_t, c_t, act, threads, save, chunk, k_slice
  if (cell == Cell::LSTM) return forward_cell<Cell::LSTM, M>(ARGS);
  if (cell == Cell::GRU) return forward_cell<Cell::GRU, M>(ARGS);
  if (cell == Cell::INDRNN) return forward_cell<Cell::INDRNN, M>(ARGS);
  return forward_cell<Cell::RNN, M>(ARGS);
#undef ARGS
}

// policy: how the products treat their operands (Mm, gemm_bf16.h); BF16
// where this build has the instructions.
ffi::Error forward(F32 x, F32 w_ih, F32 w_hh, F32 b, F32 b_hn, F32 h0, F32 c0, F32 mask,
                   OutF32 hs, OutF32 cs, OutF32 saved, OutF32 h_t, OutF32 c_t, Cell cell,
                   Act act, int64_t threads, bool save, int64_t chunk, int64_t k_slice,
                   Mm policy) {
#define ARGS                                                                              \
  x, w_ih, w_hh, b, b_hn, h0, c0, mask, hs, cs, saved, h_t, c_t, cell, act, threads, save, \
      chunk, k_slice
  if (policy == Mm::F32) return forward_mm<Mm::F32>(ARGS);
  if (policy == Mm::ROUND) return forward_mm<Mm::ROUND>(ARGS);
  if constexpr (HAS_BF16) return forward_mm<Mm::BF16>(ARGS);
  return ffi::Error::InvalidArgument(
      "jaxrnn cpu kernel: bfloat16 products asked of a build without AVX512-BF16");
#undef ARGS
}

template <Cell C>
ffi::Error backward_cell(F32 x, F32 w_ih, F32 w_hh, F32 saved, F32 hs, F32 cs, F32 h0,
                         F32 c0, F32 dys, F32 dh_t, F32 dc_t, F32 mask, OutF32 dx,
                         OutF32 dw_ih, OutF32 dw_hh, OutF32 db, OutF32 db_hn,
                         OutF32 dh0, OutF32 dc0, Act act, int64_t threads,
                         int64_t chunk, int64_t k_slice) {
  auto d = x.dimensions();
  if (d.size() != 3) return ffi::Error::InvalidArgument("jaxrnn cpu kernel: x must be [T, B, D]");
  const int64_t T = d[0], B = d[1], D = d[2], G = num_gates(C), H = h0.dimensions().back();
  CHECK(expect(h0.dimensions(), {B, H}, "h0"));
  CHECK(expect(w_ih.dimensions(), {G * H, D}, "w_ih"));
  CHECK(expect(w_hh.dimensions(), recurrent_shape(C, H), "w_hh"));
  CHECK(expect(hs.dimensions(), {T, B, H}, "hs"));
  CHECK(expect(dys.dimensions(), {T, B, H}, "dys"));
  CHECK(expect(dh_t.dimensions(), {B, H}, "dh_t"));
  CHECK(expect(mask.dimensions(), {T, B}, "mask"));
  if (!single(C)) CHECK(expect(saved.dimensions(), {T, B, 4 * H}, "saved"));
  if (C == Cell::LSTM) {
    CHECK(expect(cs.dimensions(), {T, B, H}, "cs"));
    CHECK(expect(c0.dimensions(), {B, H}, "c0"));
    CHECK(expect(dc_t.dimensions(), {B, H}, "dc_t"));
  }
  // An output of shape [0] is not wanted.
  const bool need_dx = dx->dimensions().size() == 3, need_dw = dw_ih->dimensions().size() == 2;
  if (need_dx) CHECK(expect(dx->dimensions(), {T, B, D}, "dx"));
  if (need_dw) {
    CHECK(expect(dw_ih->dimensions(), {G * H, D}, "dw_ih"));
    CHECK(expect(dw_hh->dimensions(), recurrent_shape(C, H), "dw_hh"));
    CHECK(expect(db->dimensions(), {G * H}, "db"));
    if (C == Cell::GRU) CHECK(expect(db_hn->dimensions(), {H}, "db_hn"));
  }
  Backward<C> k;
  k.need_dx = need_dx, k.need_dw = need_dw;
  k.T = T, k.B = B, k.D = D, k.H = H, k.act = act;
  k.x = x.typed_data(), k.w_ih = w_ih.typed_data(), k.w_hh = w_hh.typed_data();
  k.saved = saved.typed_data(), k.hs = hs.typed_data(), k.cs = cs.typed_data();
  k.h0 = h0.typed_data(), k.c0 = c0.typed_data(), k.dys = dys.typed_data();
  k.dh_t = dh_t.typed_data(), k.dc_t = dc_t.typed_data(), k.mask = mask.typed_data();
  k.dx = dx->typed_data(), k.dw_ih = dw_ih->typed_data(), k.dw_hh = dw_hh->typed_data();
  k.db = db->typed_data(), k.db_hn = db_hn->typed_data();
  k.dh0 = dh0->typed_data(), k.dc0 = dc0->typed_data();
  return launch(k, threads, chunk, k_slice);
}

ffi::Error backward(F32 x, F32 w_ih, F32 w_hh, F32 saved, F32 hs, F32 cs, F32 h0, F32 c0,
                    F32 dys, F32 dh_t, F32 dc_t, F32 mask, OutF32 dx, OutF32 dw_ih,
                    OutF32 dw_hh, OutF32 db, OutF32 db_hn, OutF32 dh0, OutF32 dc0,
                    Cell cell, Act act, int64_t threads, int64_t chunk, int64_t k_slice) {
#define ARGS                                                                        \
  x, w_ih, w_hh, saved, hs, cs, h0, c0, dys, dh_t, dc_t, mask, dx, dw_ih, dw_hh, db, \
      db_hn, dh0, dc0, act, threads, chunk, k_slice
  if (cell == Cell::LSTM) return backward_cell<Cell::LSTM>(ARGS);
  if (cell == Cell::GRU) return backward_cell<Cell::GRU>(ARGS);
  if (cell == Cell::INDRNN) return backward_cell<Cell::INDRNN>(ARGS);
  return backward_cell<Cell::RNN>(ARGS);
#undef ARGS
}

}  // namespace
}  // namespace jaxrnn

// Each argument in the order _cpu.py passes it, with its name.
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxrnnForward, jaxrnn::forward,
                              ffi::Ffi::Bind()
                                  .Arg<jaxrnn::F32>()     // x [T, B, D]
                                  .Arg<jaxrnn::F32>()     // w_ih [G*H, D]
                                  .Arg<jaxrnn::F32>()     // w_hh [G*H, H] or [H]
                                  .Arg<jaxrnn::F32>()     // b [G*H]
                                  .Arg<jaxrnn::F32>()     // b_hn [H] (GRU) or [0]
                                  .Arg<jaxrnn::F32>()     // h0 [B, H]
                                  .Arg<jaxrnn::F32>()     // c0 [B, H] (LSTM) or [0]
                                  .Arg<jaxrnn::F32>()     // mask [T, B]
                                  .Ret<jaxrnn::F32>()     // hs [T, B, H]
                                  .Ret<jaxrnn::F32>()     // cs [T, B, H] or [0]
                                  .Ret<jaxrnn::F32>()     // saved [T, B, 4H] or [0]
                                  .Ret<jaxrnn::F32>()     // h_t [B, H]
                                  .Ret<jaxrnn::F32>()     // c_t [B, H] or [0]
                                  .Attr<jaxrnn::Cell>("cell")
                                  .Attr<jaxrnn::Act>("activation")
                                  .Attr<int64_t>("threads")
                                  .Attr<bool>("save")
                                  .Attr<int64_t>("chunk")    // steps, 0: from the L2 cache
                                  .Attr<int64_t>("k_slice")  // 0: from the L1 cache
                                  .Attr<jaxrnn::Mm>("policy"));  // the operands (Mm)

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxrnnBackward, jaxrnn::backward,
                              ffi::Ffi::Bind()
                                  .Arg<jaxrnn::F32>()     // x [T, B, D]
                                  .Arg<jaxrnn::F32>()     // w_ih [G*H, D]
                                  .Arg<jaxrnn::F32>()     // w_hh [G*H, H] or [H]
                                  .Arg<jaxrnn::F32>()     // saved [T, B, 4H] or [0]
                                  .Arg<jaxrnn::F32>()     // hs [T, B, H]
                                  .Arg<jaxrnn::F32>()     // cs [T, B, H] or [0]
                                  .Arg<jaxrnn::F32>()     // h0 [B, H]
                                  .Arg<jaxrnn::F32>()     // c0 [B, H] or [0]
                                  .Arg<jaxrnn::F32>()     // dys [T, B, H]
                                  .Arg<jaxrnn::F32>()     // dh_t [B, H]
                                  .Arg<jaxrnn::F32>()     // dc_t [B, H] or [0]
                                  .Arg<jaxrnn::F32>()     // mask [T, B]
                                  .Ret<jaxrnn::F32>()     // dx [T, B, D]
                                  .Ret<jaxrnn::F32>()     // dw_ih [G*H, D]
                                  .Ret<jaxrnn::F32>()     // dw_hh [G*H, H] or [H]
                                  .Ret<jaxrnn::F32>()     // db [G*H]
                                  .Ret<jaxrnn::F32>()     // db_hn [H] or [0]
                                  .Ret<jaxrnn::F32>()     // dh0 [B, H]
                                  .Ret<jaxrnn::F32>()     // dc0 [B, H] or [0]
                                  .Attr<jaxrnn::Cell>("cell")
                                  .Attr<jaxrnn::Act>("activation")
                                  .Attr<int64_t>("threads")
                                  .Attr<int64_t>("chunk")
                                  .Attr<int64_t>("k_slice"));
