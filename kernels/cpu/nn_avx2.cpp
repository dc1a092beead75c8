// CPU kernels of the nn family built for AVX2 + FMA + F16C (see nn_impl.hpp).
#define NN_ISA nn_avx2
#include "cpu/nn_impl.hpp"
