// CPU kernels of the nn family built for AVX-512 F/BW/VL/DQ (see nn_impl.hpp).
#define NN_ISA nn_avx512
#include "cpu/nn_impl.hpp"
