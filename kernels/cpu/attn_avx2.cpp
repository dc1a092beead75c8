// Attention on the CPU: the AVX2 + FMA + F16C build of attn_impl.hpp (compiled with -mavx2 -mfma -mf16c).
#include "attn.hpp"

#define DS_ATTN_NS attn_avx2
#include "attn_impl.hpp"
