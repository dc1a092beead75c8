// Attention on the CPU: the AVX-512 build of attn_impl.hpp (compiled with -mavx512f/bw/vl/dq -mfma -mf16c).
#include "attn.hpp"

#define DS_ATTN_NS attn_avx512
#include "attn_impl.hpp"
